package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.relativeError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.tutorials.step03.LayerNorm;
import dev.llmc4j.tutorials.step06.Gelu;
import dev.llmc4j.tutorials.step08.CrossEntropy;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The bridge from PyTorch: reference/autograd_bridge.py lets autograd differentiate LayerNorm, GELU and
 * softmax + cross-entropy in float64 (after torch.autograd.gradcheck passes) and saves inputs, outputs and .grad;
 * here the lessons' hand-written backward passes of steps 3, 6 and 8 must give the same numbers.
 */
class AutogradBridgeTest {
    static Map<String, double[]> saved;

    @BeforeAll
    static void runTheReference() throws IOException, InterruptedException {
        Path root = Path.of(System.getProperty("llmc.root", ".."));
        Path out = root.resolve("tutorials/target/autograd");
        String python = System.getProperty("llmc.python", "/usr/bin/python3");
        String script = root.resolve("reference/autograd_bridge.py").toString();
        var process = new ProcessBuilder(python, script, out.toString())
                .redirectErrorStream(true)
                .start();
        String printed = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        int exit = process.waitFor();
        Assumptions.assumeFalse(
                printed.contains("No module named 'torch'"),
                "skipped: " + python + " has no torch (Debian: apt-get install python3-torch)");
        assertEquals(0, exit, "reference/autograd_bridge.py failed:\n" + printed);
        System.out.println("PyTorch: " + printed);
        saved = read(out.resolve("autograd_bridge.bin"));
    }

    /** The reference's file: int32 count, then per tensor int32 name length, name, int32 element count, float64s. */
    static Map<String, double[]> read(Path file) throws IOException {
        var buffer = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        var tensors = new HashMap<String, double[]>();
        for (int count = buffer.getInt(); count > 0; count--) {
            var name = new byte[buffer.getInt()];
            buffer.get(name);
            var values = new double[buffer.getInt()];
            for (int i = 0; i < values.length; i++) values[i] = buffer.getDouble();
            tensors.put(new String(name, StandardCharsets.UTF_8), values);
        }
        return tensors;
    }

    static void same(String what, double[] autograd, double[] lesson) {
        double error = relativeError(lesson, autograd);
        System.out.printf("%-40s relative error %.1e%n", what, error);
        assertTrue(error < 1e-12, what + ": " + error); // both in double: only the order of the sums differs
    }

    @Test
    void layerNormsBackwardIsAutogradsGrad() {
        int N = 3, C = 8;
        double[] x = saved.get("ln.x"), w = saved.get("ln.w"), b = saved.get("ln.b"), dout = saved.get("ln.dout");
        var forward = LayerNorm.forward(x, w, b, N, C);
        double[] dx = new double[N * C], dw = new double[C], db = new double[C];
        LayerNorm.backward(dx, dw, db, dout, x, w, forward.mean(), forward.rstd(), N, C);
        same("step 3 LayerNorm out vs F.layer_norm", saved.get("ln.out"), forward.out());
        same("step 3 LayerNorm dx vs x.grad", saved.get("ln.dx"), dx);
        same("step 3 LayerNorm dweight vs w.grad", saved.get("ln.dw"), dw);
        same("step 3 LayerNorm dbias vs b.grad", saved.get("ln.db"), db);
    }

    @Test
    void gelusBackwardIsAutogradsGrad() {
        double[] x = saved.get("gelu.x");
        double[] dx = new double[x.length];
        Gelu.backward(dx, x, saved.get("gelu.dout"));
        same("step 6 GELU out vs F.gelu(tanh)", saved.get("gelu.out"), Gelu.forward(x));
        same("step 6 GELU dx vs x.grad", saved.get("gelu.dx"), dx);
    }

    @Test
    void crossEntropysFusedBackwardIsAutogradsGrad() {
        int N = 3, V = 11;
        double[] logits = saved.get("ce.logits");
        int[] targets = new int[N];
        for (int n = 0; n < N; n++) targets[n] = (int) saved.get("ce.targets")[n];
        double[] probs = CrossEntropy.softmax(logits, N, V, V);
        same("step 8 mean loss vs F.cross_entropy", saved.get("ce.loss"), new double[] {
            CrossEntropy.meanLoss(probs, targets, N, V)
        });
        same("step 8 dlogits vs logits.grad", saved.get("ce.dlogits"), CrossEntropy.backward(probs, targets, N, V, V));
    }

    @Test
    void autocastRunsTheMatmulsIn16BitsAndTheLossIn32() {
        // step 15: what torch.autocast(bfloat16) did with each operation (the output's bits), on the CPU
        assertEquals(16, saved.get("autocast.linear")[0], "linear: the matmuls are what 16 bits speed up");
        assertEquals(16, saved.get("autocast.matmul")[0]);
        assertEquals(32, saved.get("autocast.cross_entropy")[0], "the loss: a sum of logs over the vocabulary");
        assertEquals(32, saved.get("autocast.add.bf16_plus_fp32")[0], "unlisted ops promote to the widest input");
        assertEquals(32, saved.get("autocast.layer_norm.fp32_input")[0], "unlisted ops keep fp32 inputs in fp32");
    }
}
