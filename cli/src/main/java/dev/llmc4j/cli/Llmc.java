package dev.llmc4j.cli;

import dev.llmc4j.cli.monitor.ReportCommand;
import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.util.LlmcException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code ./llmc} command line: one subcommand per job. */
@Command(
        name = "llmc",
        mixinStandardHelpOptions = true,
        version = "llmc4j 0.1.0",
        description = "llm.c in Java: train, test and sample GPT-2 (and Llama 3) models.",
        subcommands = {
            CommandLine.HelpCommand.class,
            DataCommand.class,
            ImportCommand.class,
            InitCommand.class,
            TestGpt2Command.class,
            TrainCommand.class,
            SampleCommand.class,
            QuickstartCommand.class,
            AblateCommand.class,
            ReportCommand.class,
            Llama3Command.class,
            EvalCommand.class,
            ExportCommand.class,
        })
public final class Llmc implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /**
     * The CPU kernels every command builds its model with: {@code -Dllmc.kernels=baseline} for the plain loops,
     * else the vectorized ones (read here, once per model, never inside a layer).
     */
    static CpuKernels.Choice kernels() {
        return CpuKernels.Choice.parse(System.getProperty("llmc.kernels", "vectorized"));
    }

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    /** Runs a command line and returns its exit code; user errors print one line, never a stack trace. */
    public static int execute(String... args) {
        var commandLine = new CommandLine(new Llmc());
        MemoryEstimateHelp.addTo(commandLine);
        // every option value is checked before a command runs: a bad one is a usage error (exit code 2)
        commandLine.setExecutionStrategy(parseResult -> {
            OptionChecks.check(parseResult);
            return new CommandLine.RunLast().execute(parseResult);
        });
        commandLine.setParameterExceptionHandler((exception, arguments) -> {
            var cmd = exception.getCommandLine();
            cmd.getErr()
                    .println("error: " + exception.getMessage() + " (see: "
                            + cmd.getCommandSpec().qualifiedName() + " --help)");
            CommandLine.UnmatchedArgumentException.printSuggestions(exception, cmd.getErr());
            return cmd.getCommandSpec().exitCodeOnInvalidInput();
        });
        commandLine.setExecutionExceptionHandler((exception, cmd, parseResult) -> {
            if (exception instanceof LlmcException) {
                cmd.getErr().println("error: " + exception.getMessage());
                return 1;
            }
            throw exception;
        });
        return commandLine.execute(args);
    }
}
