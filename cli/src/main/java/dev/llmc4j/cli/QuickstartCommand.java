package dev.llmc4j.cli;

import dev.llmc4j.cli.monitor.MonitorOptions;
import dev.llmc4j.data.DatasetBuilder;
import dev.llmc4j.data.TinyShakespeare;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.GPT2Kernels;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.random.XorShift;
import dev.llmc4j.sample.Sampler;
import dev.llmc4j.tokenizer.GPT2Tokenizer;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * {@code ./llmc quickstart}: the whole job in one command — tinyshakespeare, a small GPT-2 trained from scratch
 * on the CPU for a few minutes, a sample, and the loss curves.
 */
@Command(
        name = "quickstart",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Prepare tinyshakespeare, train a small GPT-2 from scratch on the CPU (about 10 minutes on 2 cores),",
            "sample Shakespeare-like text and draw the loss curves. Everything lands in --output."
        })
public final class QuickstartCommand implements Callable<Integer> {

    @Option(
            names = "--input",
            paramLabel = "FILE",
            description = "a local copy of tinyshakespeare's input.txt (else it is downloaded)")
    Path input;

    @Option(
            names = {"-o", "--output"},
            paramLabel = "DIR",
            defaultValue = "out/quickstart",
            description = "where the model, log, loss picture and samples go (default: ${DEFAULT-VALUE})")
    Path output;

    @Option(
            names = "--data",
            paramLabel = "DIR",
            defaultValue = "data/tinyshakespeare",
            description = "where the token shards go (default: ${DEFAULT-VALUE})")
    Path data;

    @Range(min = 1, max = Integer.MAX_VALUE)
    @Option(
            names = {"-x", "--steps"},
            paramLabel = "N",
            defaultValue = "" + STEPS,
            description = "optimizer steps (default: ${DEFAULT-VALUE})")
    int steps;

    @Mixin
    MonitorOptions monitor;

    // The model and run: small enough for a laptop CPU, big enough to pick up Shakespeare's shape (names, line
    // breaks, archaic words) within about 10 minutes on 2 cores.
    static final int LAYERS = 4, HEADS = 4, CHANNELS = 256, BATCH = 8, SEQ_LEN = 64, STEPS = 500;
    static final float LEARNING_RATE = 1e-3f;

    /**
     * Writes tinyshakespeare's GPT-2 token shards and tokenizer into {@code data} (from {@code input}, a local copy
     * of the text, else downloaded), unless every {@code needed} file is there already.
     */
    static void prepareTinyShakespeare(Path input, Path data, PrintStream out, Path... needed) {
        if (Arrays.stream(needed).allMatch(Files::exists)) {
            out.println("already prepared in " + data);
            return;
        }
        var bar = DataCommand.ProgressBar.forTerminal("downloading " + TinyShakespeare.FILE_NAME);
        Path text = TinyShakespeare.locate(input, TinyShakespeare.defaultCacheDir(), bar);
        bar.finish();
        var written = DatasetBuilder.buildTinyShakespeare(DatasetBuilder.readUtf8(text), data);
        out.printf("%,d train and %,d val tokens in %s%n", written.trainTokens(), written.valTokens(), data);
    }

    @Override
    public Integer call() {
        var out = System.out;
        Path train = data.resolve("tiny_shakespeare_train.bin"), val = data.resolve("tiny_shakespeare_val.bin");
        out.println("== 1/3 data: tinyshakespeare, GPT-2 tokens");
        prepareTinyShakespeare(input, data, out, train, val, data.resolve("gpt2_tokenizer.bin"));

        var gpt2Config = GPT2Config.of(LAYERS, HEADS, CHANNELS);
        out.printf(
                "%n== 2/3 train: GPT-2 with %d layers, %d heads, %d channels (%,d parameters), %d steps of %d x %d tokens%n",
                LAYERS, HEADS, CHANNELS, gpt2Config.numParameters(), steps, BATCH, SEQ_LEN);
        var config = new TrainingConfig(
                train.toString(),
                val.toString(),
                BATCH,
                SEQ_LEN,
                -1,
                steps,
                LEARNING_RATE,
                Math.max(1, steps / 30),
                0.1f,
                "cosine",
                0.0f,
                1.0f,
                Math.max(1, steps / 10),
                20,
                steps,
                64,
                false,
                output,
                steps,
                1,
                0,
                false,
                0,
                0,
                data.resolve("gpt2_tokenizer.bin"),
                1,
                0);
        try (var model = GPT2.randomInit(gpt2Config, GPT2Kernels.of(Llmc.kernels()));
                var ui = monitor.open(
                        model,
                        config,
                        "quickstart: GPT-2 " + gpt2Config,
                        MonitorOptions.gpt2TokenText(config.tokenizerFile()),
                        out)) {
            var trainer = new Trainer(model, config, out);
            if (ui != null) trainer.listen(ui.monitor());
            var result = trainer.run();
            Path picture = output.resolve("loss.png");
            LossChart.write(picture, result.trainLosses(), result.valLosses(), "quickstart: GPT-2 on tinyshakespeare");

            out.printf("%n== 3/3 sample: 200 tokens after \"ROMEO:\" (temperature 0.8, top-k 40)%n");
            var tokenizer = GPT2Tokenizer.get();
            out.print("ROMEO:");
            model.generator()
                    .generate(
                            tokenizer.encodeOrdinary("ROMEO:"),
                            200,
                            new Sampler(new XorShift(1337), 0.8f, 40),
                            token -> {
                                byte[] bytes = tokenizer.tokenBytes(token);
                                out.write(bytes, 0, bytes.length);
                                out.flush();
                            });
            var lastVal = result.valLosses().getLast();
            out.printf(
                    "%n%n== done: val loss %.3f at step %d (it started near %.1f = ln 50257)%n",
                    lastVal.loss(), lastVal.step(), Math.log(50257));
            out.println("  model:       " + output.resolve("model_%08d.bin".formatted(steps)));
            out.println("  loss curves: " + picture);
            out.println("  log:         " + output.resolve("main.log"));
            out.println("  sample more: ./llmc sample -e " + output.resolve("model_%08d.bin".formatted(steps))
                    + " --prompt \"JULIET:\" --temperature 0.8 --top-k 40");
        }
        return 0;
    }
}
