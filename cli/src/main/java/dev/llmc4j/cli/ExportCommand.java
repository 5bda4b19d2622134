package dev.llmc4j.cli;

import dev.llmc4j.llama3.SafeTensorsExport;
import dev.llmc4j.model.GPT2Export;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code ./llmc export hf}: a checkpoint to a Hugging Face folder, the way back of {@code ./llmc import}. */
@Command(
        name = "export",
        mixinStandardHelpOptions = true,
        description = "Export a checkpoint to another format.",
        subcommands = {ExportCommand.HuggingFaceCommand.class})
public final class ExportCommand implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    @Command(
            name = "hf",
            mixinStandardHelpOptions = true,
            description = {
                "Write a GPT-2 or Llama 3 checkpoint as a Hugging Face folder (model.safetensors, F32, and",
                "config.json) that transformers opens (llm.c's dev/eval/export_hf.py). GPT-2: Conv1D (in, out) weights,",
                "wte cut back from Vp to V rows, lm_head tied. Llama 3: HF names, q/k rows in HF's rotate-half order,",
                "lm_head left out when it equals the embedding. ./llmc import gpt2 --from DIR gives the checkpoint back."
            })
    static final class HuggingFaceCommand implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(
                names = {"-e", "--model"},
                required = true,
                paramLabel = "FILE",
                description = "GPT-2 or Llama 3 checkpoint (.bin)")
        Path modelFile;

        @Option(
                names = {"-o", "--output"},
                required = true,
                paramLabel = "DIR",
                description = "folder to write (made if missing)")
        Path output;

        @Override
        public Integer call() {
            String what = switch (ModelFile.of(modelFile)) {
                case GPT2 -> "GPT-2 " + GPT2Export.export(modelFile, output);
                case LLAMA3 ->
                    "Llama 3 " + SafeTensorsExport.export(modelFile, output).describe();
            };
            var out = spec.commandLine().getOut();
            out.println("wrote " + output.resolve("model.safetensors") + " and " + output.resolve("config.json") + ": "
                    + what);
            out.flush();
            return 0;
        }
    }
}
