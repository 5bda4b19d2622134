package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.model.GPT2Config;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Every activation, activation-gradient and scratch buffer of one (B, T), carved from one device allocation:
 * llm.c's CUDA ActivationTensors, as the CPU model's {@code GPT2.Activations} record. Each tensor starts at a
 * 256-byte boundary (cuBLASLt and vector loads like aligned pointers). {@link #plan} lays the tensors out from
 * address 0; {@link #at} moves the plan onto an allocation.
 *
 * <p>Shapes (L = layers, BT = B*T; "X" = floatX, "f32" = fp32; [L] = one layer only when recomputed):
 * recompute level 1 keeps a single fchGelu (recomputed from fch in the backward pass), level 2 also a single ln1
 * and ln2 (recomputed from the residual stream). Backward buffers hold one layer at a time.
 *
 * @param lse      flash attention: one log-sum-exp per row, all its backward pass needs; null for plain attention
 * @param att      plain attention: the probabilities; null for flash attention
 * @param attD     flash attention's backward: rowsum(dO * O) per row; null for plain attention
 * @param dpreatt  plain attention's backward: the scores' gradient; null for flash attention
 * @param partials the deterministic column sums' per-chunk partial sums (bias and LayerNorm weight gradients)
 * @param norm     the global norm's stage-1 partials, then its result
 * @param flag     the fp16 overflow check's answer
 */
public record Activations(
        DeviceTensor encoded, // (BT, C) X
        DeviceTensor ln1, // ([L], BT, C) X
        DeviceTensor ln1Mean, // (L, BT) f32
        DeviceTensor ln1Rstd, // (L, BT) f32
        DeviceTensor qkv, // (L, BT, 3C) X
        DeviceTensor atty, // (L, BT, C) X
        DeviceTensor lse, // (L, B, NH, T) f32             flash only
        DeviceTensor att, // (L, B, NH, T, T) f32          plain only
        DeviceTensor residual2, // (L, BT, C) X
        DeviceTensor ln2, // ([L], BT, C) X
        DeviceTensor ln2Mean, // (L, BT) f32
        DeviceTensor ln2Rstd, // (L, BT) f32
        DeviceTensor fch, // (L, BT, 4C) X
        DeviceTensor fchGelu, // ([L], BT, 4C) X
        DeviceTensor residual3, // (L, BT, C) X
        DeviceTensor lnf, // (BT, C) X
        DeviceTensor lnfMean, // (BT) f32
        DeviceTensor lnfRstd, // (BT) f32
        DeviceTensor logits, // (BT, Vp) X                    dlogits in place during the backward pass
        DeviceTensor losses, // (BT) f32
        DeviceTensor scratch, // (BT, C) X                     attproj / fcproj before the residual add
        DeviceTensor dresidual, // (BT, C) X
        DeviceTensor dbtc, // (BT, C) X
        DeviceTensor dbt4c, // (BT, 4C) X
        DeviceTensor dqkv, // (BT, 3C) X
        DeviceTensor attD, // (B, NH, T) f32                flash only
        DeviceTensor dpreatt, // (B, NH, T, T) f32             plain only
        DeviceTensor partials, // (256 row chunks, 2 * 4C) f32
        DeviceTensor norm, // (1024 + 1) f32
        DeviceTensor flag, // (1) int
        DeviceTensor inputs, // (BT) int
        DeviceTensor targets, // (BT) int
        DeviceTensor bucketTokens, // (BT) int                      encoder backward's buckets
        DeviceTensor bucketStarts, // (BT + 1) int
        DeviceTensor bucketPositions, // (BT) int
        long totalBytes) { // the whole allocation, a multiple of ALIGN

    public static final int ALIGN = 256;

    /**
     * One tensor in the allocation: its address, and its layers (1 for a tensor that is not per layer, or that
     * recompute keeps for a single layer, which every layer then reuses).
     */
    public record DeviceTensor(String name, long address, long elementsPerLayer, int layers, int elementBytes) {
        public long elements() {
            return elementsPerLayer * layers;
        }

        public long bytes() {
            return elements() * elementBytes;
        }
        /** Layer l's slice; the one slice of a single-layer tensor. */
        public long layer(int l) {
            return layers == 1 ? address : address + l * elementsPerLayer * elementBytes;
        }

        DeviceTensor at(long base) {
            return new DeviceTensor(name, base + address, elementsPerLayer, layers, elementBytes);
        }
    }

    /**
     * Layer l's slices of the per-layer tensors: what its forward pass writes and its backward pass reads.
     * {@code residual} is the layer's input (encoded for layer 0, else residual3 of layer l - 1); {@code lse} is 0
     * for plain attention, {@code att} 0 for flash attention.
     */
    public record Layer(
            long residual,
            long ln1,
            long ln1Mean,
            long ln1Rstd,
            long qkv,
            long atty,
            long lse,
            long att,
            long residual2,
            long ln2,
            long ln2Mean,
            long ln2Rstd,
            long fch,
            long fchGelu,
            long residual3) {}

    public Layer layer(int l) {
        return new Layer(
                l == 0 ? encoded.address() : residual3.layer(l - 1),
                ln1.layer(l),
                ln1Mean.layer(l),
                ln1Rstd.layer(l),
                qkv.layer(l),
                atty.layer(l),
                lse == null ? 0 : lse.layer(l),
                att == null ? 0 : att.layer(l),
                residual2.layer(l),
                ln2.layer(l),
                ln2Mean.layer(l),
                ln2Rstd.layer(l),
                fch.layer(l),
                fchGelu.layer(l),
                residual3.layer(l));
    }

    public static Activations plan(
            GPT2Config config, int batchSize, int seqLen, Precision precision, boolean flash, int recompute) {
        if (recompute < 0 || recompute > 2)
            throw new IllegalArgumentException("recompute must be 0, 1 or 2: " + recompute);
        int L = config.numLayers();
        long C = config.channels(), NH = config.numHeads(), Vp = config.paddedVocabSize();
        long BT = (long) batchSize * seqLen;
        int x = precision.bytes();
        int lnLayers = recompute >= 2 ? 1 : L, geluLayers = recompute >= 1 ? 1 : L;
        var p = new Planner();
        return new Activations(
                p.add("encoded", BT * C, 1, x),
                p.add("ln1", BT * C, lnLayers, x),
                p.add("ln1Mean", BT, L, 4),
                p.add("ln1Rstd", BT, L, 4),
                p.add("qkv", BT * 3 * C, L, x),
                p.add("atty", BT * C, L, x),
                flash ? p.add("lse", BT * NH, L, 4) : null,
                flash ? null : p.add("att", NH * BT * seqLen, L, 4),
                p.add("residual2", BT * C, L, x),
                p.add("ln2", BT * C, lnLayers, x),
                p.add("ln2Mean", BT, L, 4),
                p.add("ln2Rstd", BT, L, 4),
                p.add("fch", BT * 4 * C, L, x),
                p.add("fchGelu", BT * 4 * C, geluLayers, x),
                p.add("residual3", BT * C, L, x),
                p.add("lnf", BT * C, 1, x),
                p.add("lnfMean", BT, 1, 4),
                p.add("lnfRstd", BT, 1, 4),
                p.add("logits", BT * Vp, 1, x),
                p.add("losses", BT, 1, 4),
                p.add("scratch", BT * C, 1, x),
                p.add("dresidual", BT * C, 1, x),
                p.add("dbtc", BT * C, 1, x),
                p.add("dbt4c", BT * 4 * C, 1, x),
                p.add("dqkv", BT * 3 * C, 1, x),
                flash ? p.add("attD", BT * NH, 1, 4) : null,
                flash ? null : p.add("dpreatt", NH * BT * seqLen, 1, 4),
                p.add("partials", (long) Launch.MAX_ROW_CHUNKS * 2 * 4 * C, 1, 4),
                p.add("norm", Launch.NORM_BLOCKS + 1, 1, 4),
                p.add("flag", 1, 1, 4),
                p.add("inputs", BT, 1, 4),
                p.add("targets", BT, 1, 4),
                p.add("bucketTokens", BT, 1, 4),
                p.add("bucketStarts", BT + 1, 1, 4),
                p.add("bucketPositions", BT, 1, 4),
                alignUp(p.end, ALIGN));
    }

    /** Lays tensors out one after another, each at the next ALIGN boundary. */
    private static final class Planner {
        long end;

        DeviceTensor add(String name, long elementsPerLayer, int layers, int elementBytes) {
            var tensor = new DeviceTensor(name, alignUp(end, ALIGN), elementsPerLayer, layers, elementBytes);
            end = tensor.address() + tensor.bytes();
            return tensor;
        }
    }

    static long alignUp(long n, long alignment) {
        return (n + alignment - 1) / alignment * alignment;
    }

    /** The same tensors in an allocation that starts at device address {@code base}. */
    public Activations at(long base) {
        DeviceTensor[] moved =
                tensors(this).stream().map(t -> t == null ? null : t.at(base)).toArray(DeviceTensor[]::new);
        return new Activations(
                moved[0],
                moved[1],
                moved[2],
                moved[3],
                moved[4],
                moved[5],
                moved[6],
                moved[7],
                moved[8],
                moved[9],
                moved[10],
                moved[11],
                moved[12],
                moved[13],
                moved[14],
                moved[15],
                moved[16],
                moved[17],
                moved[18],
                moved[19],
                moved[20],
                moved[21],
                moved[22],
                moved[23],
                moved[24],
                moved[25],
                moved[26],
                moved[27],
                moved[28],
                moved[29],
                moved[30],
                moved[31],
                moved[32],
                moved[33],
                moved[34],
                totalBytes);
    }

    /** The tensors present (flash or plain attention leaves two out), in allocation order. */
    public List<DeviceTensor> tensors() {
        return tensors(this).stream().filter(Objects::nonNull).toList();
    }

    private static List<DeviceTensor> tensors(Activations a) {
        return Arrays.asList(
                a.encoded,
                a.ln1,
                a.ln1Mean,
                a.ln1Rstd,
                a.qkv,
                a.atty,
                a.lse,
                a.att,
                a.residual2,
                a.ln2,
                a.ln2Mean,
                a.ln2Rstd,
                a.fch,
                a.fchGelu,
                a.residual3,
                a.lnf,
                a.lnfMean,
                a.lnfRstd,
                a.logits,
                a.losses,
                a.scratch,
                a.dresidual,
                a.dbtc,
                a.dbt4c,
                a.dqkv,
                a.attD,
                a.dpreatt,
                a.partials,
                a.norm,
                a.flag,
                a.inputs,
                a.targets,
                a.bucketTokens,
                a.bucketStarts,
                a.bucketPositions);
    }
}
