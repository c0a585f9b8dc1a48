using System.Numerics.Tensors;

namespace NativeSparsity.Models.Vision;

/// <summary>Training settings for <see cref="PixelBaseline"/>: Adam on mean cross-entropy, plus L2 weight decay on the weights.</summary>
public sealed record PixelBaselineOptions(int Epochs = 5, int BatchSize = 128, float LearningRate = 1e-3f, float WeightDecay = 0f, ulong Seed = 0);

/// <summary>
/// The simple baseline a ViT is compared against: multinomial logistic regression on the raw
/// normalised pixels (softmax(W x + b)), trained on the host by minibatch Adam from zero weights.
/// Single-threaded, with a Philox epoch order, so training is a pure function of its inputs.
/// </summary>
public sealed class PixelBaseline
{
    public int ClassCount { get; }
    public int FeatureCount { get; }

    /// <summary>[ClassCount, FeatureCount] row-major.</summary>
    public float[] Weights { get; }

    /// <summary>[ClassCount].</summary>
    public float[] Bias { get; }

    private PixelBaseline(int classCount, int featureCount)
    {
        ClassCount = classCount; FeatureCount = featureCount;
        Weights = new float[classCount * featureCount];
        Bias = new float[classCount];
    }

    /// <summary>
    /// Trains on <paramref name="features"/> ([labels.Length, featureCount] row-major, e.g.
    /// <see cref="PixelNormalization.Normalize"/>) with <paramref name="labels"/> in [0, classCount).
    /// </summary>
    public static PixelBaseline Train(float[] features, int[] labels, int classCount, PixelBaselineOptions? options = null)
    {
        options ??= new PixelBaselineOptions();
        int n = labels.Length;
        if (n == 0) throw new ArgumentException("no training examples", nameof(labels));
        if (classCount <= 1) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "expected at least two classes");
        if (features.Length % n != 0) throw new ArgumentException($"features: {features.Length} floats is not a whole number of rows for {n} labels", nameof(features));
        if (options.Epochs < 0 || options.BatchSize <= 0 || !(options.LearningRate > 0))
            throw new ArgumentOutOfRangeException(nameof(options), options, "expected epochs >= 0, batch size > 0 and learning rate > 0");
        CheckLabels(labels, classCount);
        int d = features.Length / n, c = classCount;
        var model = new PixelBaseline(c, d);
        var gradW = new float[c * d];
        var gradB = new float[c];
        var mW = new float[c * d]; var vW = new float[c * d];
        var mB = new float[c]; var vB = new float[c];
        var probs = new float[c];
        const float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
        long t = 0;
        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            int[] order = PatchBatcher.EpochOrder(n, options.Seed, epoch);
            for (int start = 0; start < n; start += options.BatchSize)
            {
                int end = Math.Min(n, start + options.BatchSize);
                Array.Clear(gradW); Array.Clear(gradB);
                for (int k = start; k < end; k++)
                {
                    int i = order[k];
                    var x = features.AsSpan(i * d, d);
                    model.Probabilities(x, probs);
                    probs[labels[i]] -= 1f;
                    for (int cls = 0; cls < c; cls++)
                    {
                        var g = gradW.AsSpan(cls * d, d);
                        TensorPrimitives.MultiplyAdd(x, probs[cls], g, g);
                        gradB[cls] += probs[cls];
                    }
                }
                float scale = 1f / (end - start);
                TensorPrimitives.Multiply(gradW, scale, gradW);
                TensorPrimitives.Multiply(gradB, scale, gradB);
                if (options.WeightDecay != 0) TensorPrimitives.MultiplyAdd(model.Weights, options.WeightDecay, gradW, gradW);
                t++;
                float lrT = options.LearningRate * MathF.Sqrt(1 - MathF.Pow(beta2, t)) / (1 - MathF.Pow(beta1, t));
                AdamStep(model.Weights, gradW, mW, vW, beta1, beta2, eps, lrT);
                AdamStep(model.Bias, gradB, mB, vB, beta1, beta2, eps, lrT);
            }
        }
        return model;
    }

    /// <summary>Softmax probabilities of one example.</summary>
    public void Probabilities(ReadOnlySpan<float> x, Span<float> probabilities)
    {
        if (x.Length != FeatureCount || probabilities.Length != ClassCount)
            throw new ArgumentException($"expected {FeatureCount} features and {ClassCount} outputs, got {x.Length} and {probabilities.Length}");
        for (int cls = 0; cls < ClassCount; cls++)
            probabilities[cls] = TensorPrimitives.Dot(Weights.AsSpan(cls * FeatureCount, FeatureCount), x) + Bias[cls];
        TensorPrimitives.SoftMax(probabilities, probabilities);
    }

    /// <summary>Most probable class of each row of <paramref name="features"/> (first on ties).</summary>
    public int[] Predict(float[] features)
    {
        if (features.Length % FeatureCount != 0)
            throw new ArgumentException($"features: {features.Length} floats is not a whole number of {FeatureCount}-float rows", nameof(features));
        var predictions = new int[features.Length / FeatureCount];
        var logits = new float[ClassCount];
        for (int i = 0; i < predictions.Length; i++)
        {
            var x = features.AsSpan(i * FeatureCount, FeatureCount);
            for (int cls = 0; cls < ClassCount; cls++)
                logits[cls] = TensorPrimitives.Dot(Weights.AsSpan(cls * FeatureCount, FeatureCount), x) + Bias[cls];
            predictions[i] = TensorPrimitives.IndexOfMax(logits);
        }
        return predictions;
    }

    /// <summary>Top-1 accuracy on (features, labels).</summary>
    public double Accuracy(float[] features, int[] labels)
    {
        var predictions = Predict(features);
        if (predictions.Length != labels.Length)
            throw new ArgumentException($"expected {predictions.Length} labels, one per feature row, got {labels.Length}", nameof(labels));
        return Agreement(predictions, labels);
    }

    /// <summary>Accuracy on <paramref name="evalLabels"/> of always answering the most frequent class of <paramref name="trainLabels"/> (lowest on ties).</summary>
    public static double MajorityAccuracy(int[] trainLabels, int[] evalLabels, int classCount)
    {
        CheckLabels(trainLabels, classCount);
        var counts = new int[classCount];
        foreach (int y in trainLabels) counts[y]++;
        int majority = Array.IndexOf(counts, counts.Max());
        return evalLabels.Length == 0 ? 0 : evalLabels.Count(y => y == majority) / (double)evalLabels.Length;
    }

    private static double Agreement(int[] predictions, int[] labels)
    {
        if (labels.Length == 0) return 0;
        int correct = 0;
        for (int i = 0; i < labels.Length; i++) if (predictions[i] == labels[i]) correct++;
        return correct / (double)labels.Length;
    }

    private static void AdamStep(Span<float> w, ReadOnlySpan<float> g, Span<float> m, Span<float> v, float beta1, float beta2, float eps, float lr)
    {
        for (int i = 0; i < w.Length; i++)
        {
            m[i] = beta1 * m[i] + (1 - beta1) * g[i];
            v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
            w[i] -= lr * m[i] / (MathF.Sqrt(v[i]) + eps);
        }
    }

    private static void CheckLabels(int[] labels, int classCount)
    {
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classCount)
                throw new ArgumentException($"labels[{i}] = {labels[i]} is outside [0, {classCount})", nameof(labels));
    }
}
