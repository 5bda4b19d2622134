package dev.llmc4j.cli;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * The values a numeric option accepts, checked by {@link OptionChecks} right after parsing, before the command
 * runs: a value outside is a usage error (exit code 2) naming the option, the range and the value. Every numeric
 * option of every command carries one (a test makes sure); floating-point values must also be finite.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.FIELD)
@interface Range {
    /** Smallest accepted value (inclusive unless {@link #minExclusive}). */
    double min() default Double.NEGATIVE_INFINITY;

    /** Largest accepted value (inclusive unless {@link #maxExclusive}). */
    double max() default Double.POSITIVE_INFINITY;

    boolean minExclusive() default false;

    boolean maxExclusive() default false;

    /** Values accepted besides the range, such as -1 for "the default". */
    long[] also() default {};
}
