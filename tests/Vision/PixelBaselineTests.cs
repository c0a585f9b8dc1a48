using NativeSparsity.Models.Vision;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Vision;

[TestFixture]
public class PixelBaselineTests
{
    [Test]
    public void BeatsMajorityOnSeparableData()
    {
        int fresh = TestUtil.FreshSeed();
        var rng = new System.Random(fresh);
        int classes = 4, d = 20, n = 400;
        var centres = TestUtil.RandomFloats(rng, classes * d, 2f);
        float[] Make(int count, int[] labels)
        {
            var x = TestUtil.RandomNormals(rng, count * d, 0.5f);
            for (int i = 0; i < count; i++)
            {
                // Imbalanced classes so the majority baseline is above chance.
                labels[i] = rng.NextDouble() < 0.4 ? 0 : rng.Next(classes);
                for (int j = 0; j < d; j++) x[i * d + j] += centres[labels[i] * d + j];
            }
            return x;
        }
        var yTrain = new int[n]; var xTrain = Make(n, yTrain);
        var yTest = new int[200]; var xTest = Make(200, yTest);
        var model = PixelBaseline.Train(xTrain, yTrain, classes, new PixelBaselineOptions(Epochs: 5, BatchSize: 32, LearningRate: 0.05f, Seed: (ulong)fresh));
        double majority = PixelBaseline.MajorityAccuracy(yTrain, yTest, classes);
        double accuracy = model.Accuracy(xTest, yTest);
        TestContext.Out.WriteLine($"accuracy {accuracy:F3}, majority {majority:F3}");
        Assert.That(majority, Is.LessThan(0.7));
        Assert.That(accuracy, Is.GreaterThan(0.95));
        var again = PixelBaseline.Train(xTrain, yTrain, classes, new PixelBaselineOptions(Epochs: 5, BatchSize: 32, LearningRate: 0.05f, Seed: (ulong)fresh));
        Assert.That(again.Weights, Is.EqualTo(model.Weights), "training is deterministic");
    }

    [Test]
    public void OneStepMatchesAdamOnTheAnalyticGradient()
    {
        // One full-batch Adam step from zero weights moves each parameter by -lr * sign(gradient).
        var rng = new System.Random(TestUtil.FreshSeed());
        int n = 5, d = 3, classes = 3;
        var x = TestUtil.RandomFloats(rng, n * d);
        var y = new[] { 0, 1, 2, 1, 1 };
        var model = PixelBaseline.Train(x, y, classes, new PixelBaselineOptions(Epochs: 1, BatchSize: n, LearningRate: 0.01f));
        for (int c = 0; c < classes; c++)
        {
            double gb = 0;
            var gw = new double[d];
            for (int i = 0; i < n; i++)
            {
                double g = (1.0 / classes - (y[i] == c ? 1 : 0)) / n;
                gb += g;
                for (int j = 0; j < d; j++) gw[j] += g * x[i * d + j];
            }
            Assert.That(model.Bias[c], Is.EqualTo(-0.01 * Math.Sign(gb)).Within(1e-5), $"bias {c}");
            for (int j = 0; j < d; j++)
                Assert.That(model.Weights[c * d + j], Is.EqualTo(-0.01 * Math.Sign(gw[j])).Within(1e-5), $"weight {c},{j}");
        }
    }

    /// <summary>The measured baseline on real Fashion-MNIST (docs/VISION-DATA.md quotes its output).</summary>
    [Test]
    public void RealFashionMnistBaseline()
    {
        string? folder = FashionMnist.FindFolder();
        if (folder == null)
            Assert.Ignore($"Fashion-MNIST not installed; run {FashionMnist.InstallCommand}");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var data = FashionMnist.Load(folder);
        double loadSeconds = clock.Elapsed.TotalSeconds;
        var (train, validation) = data.SplitTrain(FashionMnist.DefaultValidationSize, seed: 0);
        var trainSample = train.Subset(DatasetSplit.SubsamplePerClass(Enumerable.Range(0, train.Count).ToArray(), train.Labels, 10, 1000, seed: 0));
        var norm = PixelNormalization.FromImages(train);
        clock.Restart();
        var model = PixelBaseline.Train(norm.Normalize(trainSample), trainSample.Labels, 10, new PixelBaselineOptions(Epochs: 5, BatchSize: 64, LearningRate: 1e-3f));
        double trainSeconds = clock.Elapsed.TotalSeconds;
        double validationAccuracy = model.Accuracy(norm.Normalize(validation), validation.Labels);
        double testAccuracy = model.Accuracy(norm.Normalize(data.Test), data.Test.Labels);
        double majority = PixelBaseline.MajorityAccuracy(trainSample.Labels, data.Test.Labels, 10);
        TestContext.Out.WriteLine($"normalisation mean {norm.Mean:F4} std {norm.Std:F4}; 10,000 training images (1,000 per class), 5 epochs: " +
                                  $"validation {validationAccuracy:P2}, test {testAccuracy:P2}, majority {majority:P2} (load {loadSeconds:F1} s, train {trainSeconds:F1} s)");
        Assert.That(majority, Is.EqualTo(0.1).Within(1e-9));
        Assert.That(validationAccuracy, Is.GreaterThan(0.75));
        Assert.That(testAccuracy, Is.GreaterThan(0.75));
    }
}
