package dev.llmc4j.cli;

import dev.llmc4j.cpu.MatVec.Precision;
import java.util.Locale;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** {@code --weights fp32|bf16}: the precision generation keeps the weights in (see {@link Precision}). */
final class WeightsPrecision implements ITypeConverter<Precision> {

    @Override
    public Precision convert(String value) {
        return switch (value.toLowerCase(Locale.ROOT)) {
            case "fp32" -> Precision.FP32;
            case "bf16" -> Precision.BF16;
            default -> throw new TypeConversionException("expected fp32 or bf16, found '" + value + "'");
        };
    }

    /** "fp32" or "bf16", as the option spells it. */
    static String name(Precision precision) {
        return precision.name().toLowerCase(Locale.ROOT);
    }
}
