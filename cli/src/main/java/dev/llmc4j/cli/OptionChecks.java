package dev.llmc4j.cli;

import dev.llmc4j.util.LlmcException;
import java.lang.reflect.Field;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;

/**
 * Option values checked at parse time, before a command runs: every numeric option against its {@link Range} (and
 * finite, for floating-point ones), then the checks that involve several options ({@link CrossCheck}), such as
 * B*T or a model's parameter count. A failure is a picocli usage error: one line, exit code 2.
 */
final class OptionChecks {
    private OptionChecks() {}

    /** Options whose values only make sense together: checked after every single option passed its range. */
    interface CrossCheck {
        /** Throws {@link LlmcException} (or {@link ParameterException}) naming the options and the values. */
        void checkTogether();
    }

    /** The numeric types picocli fills that must carry a {@link Range}. */
    static boolean isNumeric(Class<?> type) {
        return type == int.class
                || type == long.class
                || type == float.class
                || type == double.class
                || type == short.class
                || type == Integer.class
                || type == Long.class
                || type == Float.class
                || type == Double.class
                || type == Short.class;
    }

    /** Checks the matched command and its parents (a subcommand's parent options were parsed too). */
    static void check(ParseResult parseResult) {
        for (ParseResult result = parseResult; result != null; result = result.subcommand()) {
            CommandSpec spec = result.commandSpec();
            for (OptionSpec option : spec.options()) checkRange(spec.commandLine(), option);
            checkTogether(spec.commandLine(), spec.userObject());
            for (CommandSpec mixin : spec.mixins().values()) checkTogether(spec.commandLine(), mixin.userObject());
        }
    }

    private static void checkTogether(CommandLine commandLine, Object userObject) {
        if (userObject instanceof CrossCheck crossCheck) {
            try {
                crossCheck.checkTogether();
            } catch (LlmcException e) {
                throw new ParameterException(commandLine, e.getMessage());
            }
        }
    }

    private static void checkRange(CommandLine commandLine, OptionSpec option) {
        if (!(option.userObject() instanceof Field field) || !isNumeric(field.getType())) return;
        Object value = option.getValue();
        if (value == null) return; // an optional option not given
        double number = ((Number) value).doubleValue();
        Range range = field.getAnnotation(Range.class);
        boolean finite = Double.isFinite(number);
        boolean inside = range == null ? finite : finite && within(number, range);
        if (!inside)
            throw new ParameterException(
                    commandLine,
                    "%s: expected %s, found %s"
                            .formatted(option.longestName(), describe(range, field.getType()), value),
                    option,
                    String.valueOf(value));
    }

    private static boolean within(double number, Range range) {
        for (long special : range.also()) if (number == special) return true;
        boolean aboveMin = range.minExclusive() ? number > range.min() : number >= range.min();
        boolean belowMax = range.maxExclusive() ? number < range.max() : number <= range.max();
        return aboveMin && belowMax;
    }

    /** "an integer in 1..65536", "a number in (0, 1]", "-1 or an integer in 1..2147483647". */
    static String describe(Range range, Class<?> type) {
        boolean integral =
                !(type == float.class || type == double.class || type == Float.class || type == Double.class);
        if (range == null) return integral ? "an integer" : "a finite number";
        String text;
        if (integral) {
            text = "an integer in " + bound(range.min()) + ".." + bound(range.max());
        } else {
            text = "a number in %s%s, %s%s"
                    .formatted(
                            range.minExclusive() ? "(" : "[",
                            bound(range.min()),
                            bound(range.max()),
                            range.maxExclusive() ? ")" : "]");
        }
        if (range.also().length == 0) return text;
        List<String> specials =
                Arrays.stream(range.also()).mapToObj(Long::toString).toList();
        return String.join(", ", specials) + " or " + text;
    }

    private static String bound(double value) {
        if (Double.isInfinite(value)) return value > 0 ? "inf" : "-inf";
        if (value == Math.rint(value) && Math.abs(value) < 1e15) return Long.toString((long) value);
        return String.format(Locale.ROOT, "%s", value);
    }

    /** Every numeric option of every command, with the command's qualified name: for the test that all have a range. */
    static List<String> numericOptionsWithoutRange(CommandLine root) {
        return allCommands(root).stream()
                .flatMap(cmd -> cmd.getCommandSpec().options().stream()
                        .filter(o -> o.userObject() instanceof Field f
                                && isNumeric(f.getType())
                                && f.getAnnotation(Range.class) == null)
                        .map(o -> cmd.getCommandSpec().qualifiedName() + " " + o.longestName()))
                .collect(Collectors.toList());
    }

    static List<CommandLine> allCommands(CommandLine root) {
        var all = new java.util.ArrayList<CommandLine>();
        all.add(root);
        for (CommandLine sub : root.getSubcommands().values()) all.addAll(allCommands(sub));
        return all;
    }
}
