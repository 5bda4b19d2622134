package dev.llmc4j.tutorials.step15;

/**
 * Step 15: dynamic loss scaling for fp16, PyTorch GradScaler's rules in a few lines.
 *
 * <p>Backward is linear in the loss: multiply the loss by S and every gradient comes out multiplied by S, lifted
 * out of fp16's underflow range. The optimizer divides by S again (in fp32) before it uses them. The right S is
 * as large as possible without overflowing the largest gradient past 65504, and it changes during training; so
 * it is found by trial: an overflow (inf or NaN in any gradient) means the step is thrown away and S halved; a long
 * run of good steps means S is probably too cautious, so it doubles.
 */
// tag::scaler[]
public final class LossScaler {
    private float scale; // S: the loss (and so every gradient) is multiplied by it
    private final int growthInterval; // double S after this many good steps in a row
    private int goodSteps; // good steps since the last overflow or growth

    public LossScaler(float initialScale, int growthInterval) {
        this.scale = initialScale;
        this.growthInterval = growthInterval;
    }

    public float scale() {
        return scale;
    }

    /** Called once per step with what backward produced; returns whether the optimizer may use the gradients. */
    public boolean update(boolean gradientsOverflowed) {
        if (gradientsOverflowed) { // some gradient * S was above 65504: these gradients are garbage
            scale *= 0.5f;
            goodSteps = 0;
            return false; // skip the step; the next batch tries again with S / 2
        }
        if (++goodSteps == growthInterval) {
            float grown = scale * 2f;
            if (Float.isFinite(grown)) scale = grown; // S itself must stay a usable number
            goodSteps = 0;
        }
        return true; // step with gradients / S
    }

    /** The check that decides: any inf or NaN among the scaled fp16 gradients. */
    public static boolean overflowed(float[] scaledGradients) {
        for (float g : scaledGradients) if (!Float.isFinite(g)) return true;
        return false;
    }
}
// end::scaler[]
