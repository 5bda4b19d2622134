package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.model.GPT2Config;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every activation, activation-gradient and scratch buffer of one (B, T), carved from one device allocation.
 * Each tensor starts at a 256-byte boundary (cuBLASLt and vector loads like aligned pointers).
 *
 * <p>Forward activations (L = layers, BT = B*T; "X" = floatX, "f32" = fp32), mirroring llm.c's CUDA
 * ActivationTensors:
 * <pre>
 *   encoded   (BT, C) X           ln1 (L|1, BT, C) X      ln1Mean, ln1Rstd (L, BT) f32
 *   qkv       (L, BT, 3C) X       atty (L, BT, C) X
 *   lse       (L, B, NH, T) f32   flash attention: one log-sum-exp per row, all the backward pass needs
 *   att       (L, B, NH, T, T) f32  plain attention only: the probabilities
 *   residual2 (L, BT, C) X        ln2 (L|1, BT, C) X      ln2Mean, ln2Rstd (L, BT) f32
 *   fch       (L, BT, 4C) X       fchGelu (L|1, BT, 4C) X
 *   residual3 (L, BT, C) X        lnf (BT, C) X           lnfMean, lnfRstd (BT) f32
 *   logits    (BT, Vp) X          overwritten in place by dlogits in the backward pass
 *   losses    (BT) f32            scratch (BT, C) X: the attproj / fcproj matmul output before the residual add
 * </pre>
 * Recompute: level 1 keeps a single fchGelu (recomputed from fch in the backward pass), level 2 also a single
 * ln1 and ln2 (recomputed from the residual stream). Backward scratch, one layer at a time:
 * <pre>
 *   dresidual (BT, C) X  dbtc (BT, C) X  dbt4c (BT, 4C) X  dqkv (BT, 3C) X
 *   attD (B, NH, T) f32 (flash)  or  dpreatt (B, NH, T, T) f32 (plain)
 *   partials (256 row chunks, 2 * 4C) f32 for the deterministic column sums, norm (1024 + 1) f32, flag (1) int
 *   inputs, targets (BT) int; encoder buckets: tokens (BT), starts (BT + 1), positions (BT) int
 * </pre>
 */
public final class ActivationLayout {
    public static final int ALIGN = 256;

    /** One tensor: byte offset in the allocation, element count, element size. */
    public record Tensor(String name, long offset, long elements, int elementBytes) {
        public long bytes() { return elements * elementBytes; }
    }

    private final Map<String, Tensor> tensors = new LinkedHashMap<>();
    private long totalBytes;
    public final int batchSize, seqLen, recompute;
    public final boolean flash;
    public final Precision precision;

    public ActivationLayout(GPT2Config config, int batchSize, int seqLen, Precision precision, boolean flash, int recompute) {
        if (recompute < 0 || recompute > 2) throw new IllegalArgumentException("recompute must be 0, 1 or 2: " + recompute);
        this.batchSize = batchSize;
        this.seqLen = seqLen;
        this.precision = precision;
        this.flash = flash;
        this.recompute = recompute;
        long L = config.numLayers(), C = config.channels(), NH = config.numHeads(), Vp = config.paddedVocabSize();
        long BT = (long) batchSize * seqLen;
        int x = precision.bytes();
        long lnLayers = recompute >= 2 ? 1 : L;
        long geluLayers = recompute >= 1 ? 1 : L;

        add("encoded", BT * C, x);
        add("ln1", lnLayers * BT * C, x);
        add("ln1Mean", L * BT, 4);
        add("ln1Rstd", L * BT, 4);
        add("qkv", L * BT * 3 * C, x);
        add("atty", L * BT * C, x);
        if (flash) add("lse", L * BT * NH, 4);
        else add("att", L * NH * BT * seqLen, 4);
        add("residual2", L * BT * C, x);
        add("ln2", lnLayers * BT * C, x);
        add("ln2Mean", L * BT, 4);
        add("ln2Rstd", L * BT, 4);
        add("fch", L * BT * 4 * C, x);
        add("fchGelu", geluLayers * BT * 4 * C, x);
        add("residual3", L * BT * C, x);
        add("lnf", BT * C, x);
        add("lnfMean", BT, 4);
        add("lnfRstd", BT, 4);
        add("logits", BT * Vp, x);
        add("losses", BT, 4);
        add("scratch", BT * C, x);
        // backward scratch
        add("dresidual", BT * C, x);
        add("dbtc", BT * C, x);
        add("dbt4c", BT * 4 * C, x);
        add("dqkv", BT * 3 * C, x);
        if (flash) add("attD", BT * NH, 4);
        else add("dpreatt", NH * BT * seqLen, 4);
        add("partials", (long) Launch.MAX_ROW_CHUNKS * 2 * 4 * C, 4);
        add("norm", Launch.NORM_BLOCKS + 1, 4);
        add("flag", 1, 4);
        add("inputs", BT, 4);
        add("targets", BT, 4);
        add("bucketTokens", BT, 4);
        add("bucketStarts", BT + 1, 4);
        add("bucketPositions", BT, 4);
    }

    private void add(String name, long elements, int elementBytes) {
        long offset = alignUp(totalBytes, ALIGN);
        tensors.put(name, new Tensor(name, offset, elements, elementBytes));
        totalBytes = offset + elements * elementBytes;
    }

    static long alignUp(long n, long alignment) {
        return (n + alignment - 1) / alignment * alignment;
    }

    public Tensor get(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw new IllegalArgumentException("no activation tensor " + name);
        return t;
    }

    public boolean has(String name) { return tensors.containsKey(name); }

    public long offset(String name) { return get(name).offset(); }

    /** Bytes of the whole allocation (the end of the last tensor, rounded up to ALIGN). */
    public long totalBytes() { return alignUp(totalBytes, ALIGN); }

    public List<Tensor> tensors() { return Collections.unmodifiableList(new ArrayList<>(tensors.values())); }
}
