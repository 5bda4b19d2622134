package dev.llmc4j.tutorials.step11;

import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.sample.Sampler;
import dev.llmc4j.train.LearningRateSchedule;
import dev.llmc4j.train.TrainableModel;
import java.util.List;

/**
 * Step 11: the training loop, validation and generation, written against the real model so that only the loop
 * itself is the lesson. {@code dev.llmc4j.train.Trainer} is the full version (accumulation, logging, checkpoints,
 * resume, outlier skipping); the test shows this short loop produces exactly its losses.
 */
public final class TrainingLoop {
    private TrainingLoop() {}

    /** One (B, T) batch: targets are the inputs moved by one token. */
    public record Batch(int[] inputs, int[] targets) {}

    // tag::train[]
    /**
     * {@code steps} optimizer steps, one batch each (cycling through {@code batches}); returns each step's loss.
     * llm.c's recipe: clip the gradient to global norm 1, AdamW with betas 0.9 and 0.95, eps 1e-8, weight decay
     * on the matrices only (GPT2.update does that), learning rate from the schedule.
     */
    public static float[] train(
            TrainableModel model,
            List<Batch> batches,
            int B,
            int T,
            int steps,
            LearningRateSchedule schedule,
            float weightDecay) {
        float[] losses = new float[steps];
        for (int step = 0; step < steps; step++) {
            Batch batch = batches.get(step % batches.size());
            model.zeroGrad(); // gradients accumulate: start from zero
            float loss = model.forward(batch.inputs(), batch.targets(), B, T);
            model.backward(1); // one micro-batch per step
            float norm = model.gradientNorm();
            float gradScale = norm > 1.0f ? 1.0f / norm : 1.0f; // clip at 1.0
            float lr = schedule.learningRate(step);
            model.update(lr, 0.9f, 0.95f, 1e-8f, weightDecay, gradScale, step + 1);
            losses[step] = loss;
        }
        return losses;
    }

    /** The mean loss over batches the model never trains on: forward only, no backward, no update. */
    public static float validationLoss(TrainableModel model, List<Batch> batches, int B, int T) {
        float sum = 0;
        for (Batch batch : batches) sum += model.forward(batch.inputs(), batch.targets(), B, T);
        return sum / batches.size();
    }
    // end::train[]

    // tag::generate[]
    /**
     * Generation the slow way, as llm.c's train_gpt2.c does: for every new token, run the WHOLE sequence so far
     * through the model (B = 1, T = its length) and sample from the logits of the last position. Token n costs a
     * forward over n positions, so n tokens cost O(n²) position-forwards; the KV cache (GPT2Inference, KvCache)
     * makes that O(n), though the attention over the cache still reads O(n²) keys in total.
     */
    public static int[] generateWithoutCache(
            GPT2 model, int[] prompt, int count, Sampler sampler, List<float[]> logitsSeen) {
        int V = model.config.vocabSize(), Vp = model.config.paddedVocabSize();
        int[] sequence = java.util.Arrays.copyOf(prompt, prompt.length + count);
        for (int i = 0; i < count; i++) {
            int length = prompt.length + i;
            model.forward(java.util.Arrays.copyOf(sequence, length), null, 1, length);
            float[] last = new float[V]; // logits of the last position, row length-1
            for (int v = 0; v < V; v++)
                last[v] = dev.llmc4j.cpu.Floats.get(model.logits(), (long) (length - 1) * Vp + v);
            logitsSeen.add(last);
            sequence[length] = sampler.sample(last, 0, V);
        }
        return java.util.Arrays.copyOfRange(sequence, prompt.length, sequence.length);
    }
    // end::generate[]
}
