using NativeSparsity.Models.Vision;

namespace NativeSparsity.Experiments.Vision;

/// <summary>
/// An image classification task as the fine-tuner sees it: training, validation and (optional)
/// test images, and the pixel normalisation computed once from the training images.
/// </summary>
public sealed record VisionTask(string Name, LabeledImages Train, LabeledImages Validation, LabeledImages? Test, PixelNormalization Normalization)
{
    public const string FashionMnistName = "fashion-mnist";

    /// <summary>The main metric's name in every metrics dictionary: top-1 accuracy.</summary>
    public const string Metric = "accuracy";

    public int NumLabels => Train.ClassCount;

    /// <summary>Accuracy on <paramref name="split"/> of always answering the training split's most frequent class.</summary>
    public double MajorityBaseline(LabeledImages split) => PixelBaseline.MajorityAccuracy(Train.Labels, split.Labels, NumLabels);

    /// <summary>A task over images built in code; the normalisation comes from <paramref name="train"/>.</summary>
    public static VisionTask FromImages(string name, LabeledImages train, LabeledImages validation, LabeledImages? test = null)
    {
        if (train.Count == 0) throw new ArgumentException($"task '{name}' has no training images");
        if (validation.Count == 0) throw new ArgumentException($"task '{name}' has no validation images");
        foreach (var (split, label) in new[] { (validation, "validation"), (test, "test") })
            if (split != null && (split.Height != train.Height || split.Width != train.Width || split.Channels != train.Channels || split.ClassCount != train.ClassCount))
                throw new ArgumentException($"task '{name}': the {label} images are {split.Height}x{split.Width}x{split.Channels} with {split.ClassCount} classes, " +
                                            $"the training images {train.Height}x{train.Width}x{train.Channels} with {train.ClassCount}");
        return new VisionTask(name, train, validation, test, PixelNormalization.FromImages(train));
    }

    /// <summary>
    /// Fashion-MNIST from <paramref name="folder"/> (null: where <see cref="FashionMnist.Load"/> looks):
    /// the official training set split into train and a stratified 5,000-image validation part
    /// (seed <paramref name="splitSeed"/>), each cut to the given images per class (0: all), and the
    /// official test set cut to <paramref name="testPerClass"/> per class (0: all 10,000).
    /// </summary>
    public static VisionTask FashionMnist(string? folder, int trainPerClass, int validationPerClass, int testPerClass, ulong splitSeed = 0)
    {
        if (trainPerClass < 0 || validationPerClass < 0 || testPerClass < 0)
            throw new ArgumentException($"images per class must be 0 (all) or positive, got train {trainPerClass}, validation {validationPerClass}, test {testPerClass}");
        var data = Models.Vision.FashionMnist.Load(folder);
        var (train, validation) = data.SplitTrain(Models.Vision.FashionMnist.DefaultValidationSize, splitSeed, trainPerClass, validationPerClass);
        var test = data.Test;
        if (testPerClass > 0)
        {
            var all = Enumerable.Range(0, test.Count).ToArray();
            test = test.Subset(DatasetSplit.SubsamplePerClass(all, test.Labels, test.ClassCount, testPerClass, splitSeed));
        }
        return FromImages(FashionMnistName, train, validation, test);
    }
}
