package dev.llmc4j.cli;

import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.util.LlmcException;
import picocli.CommandLine.Option;

/**
 * Which GPT-2 to build, as llm.c's {@code -e}: a checkpoint file (*.bin), a descriptor (d6, d12, d24, d36, d48),
 * or an explicit shape with --layers/--heads/--channels.
 */
public final class ModelOptions implements OptionChecks.CrossCheck {

    @Option(
            names = {"-e", "--model"},
            paramLabel = "FILE|DESCRIPTOR",
            description =
                    "checkpoint file (*.bin) or model descriptor d6, d12, d24, d36, d48 (default: ${DEFAULT-VALUE})",
            defaultValue = "d12")
    String model;

    @Range(min = 1, max = 1024)
    @Option(names = "--layers", paramLabel = "L", description = "number of layers (with --heads and --channels)")
    Integer layers;

    @Range(min = 1, max = 65536)
    @Option(names = "--heads", paramLabel = "NH", description = "number of attention heads")
    Integer heads;

    @Range(min = 1, max = 1 << 20)
    @Option(names = "--channels", paramLabel = "C", description = "channels (embedding size)")
    Integer channels;

    /** An explicit shape must be complete and its parameter count must fit (a descriptor is checked when used). */
    @Override
    public void checkTogether() {
        explicitShape();
    }

    /** True when the model comes from a checkpoint file rather than random init. */
    public boolean isCheckpoint() {
        return explicitShape() == null && model.endsWith(".bin");
    }

    /** The config for random init (descriptor or explicit shape). */
    public GPT2Config config() {
        GPT2Config explicit = explicitShape();
        return explicit != null ? explicit : GPT2Config.fromDescriptor(model);
    }

    private GPT2Config explicitShape() {
        if (layers == null && heads == null && channels == null) return null;
        if (layers == null || heads == null || channels == null)
            throw new LlmcException("--layers, --heads and --channels go together: give all three");
        return GPT2Config.of(layers, heads, channels);
    }

    public String describe() {
        GPT2Config explicit = explicitShape();
        return explicit != null ? explicit.toString() : model;
    }
}
