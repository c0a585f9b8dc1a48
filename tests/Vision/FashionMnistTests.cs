using NativeSparsity.Models.Vision;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Vision;

[TestFixture]
[NonParallelizable] // one test sets NSPARSE_FASHION_MNIST, a process-wide variable
public class FashionMnistTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "nsparse-fmnist-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    /// <summary>Writes a fake Fashion-MNIST of n training and m test h x w images; returns the training set's contents.</summary>
    private (byte[] Pixels, byte[] Labels) WriteFake(int n, int m, int h, int w, System.Random rng, bool gzip = true)
    {
        (byte[], byte[]) One(string images, string labels, int count)
        {
            var pixels = new byte[count * h * w];
            rng.NextBytes(pixels);
            var y = new byte[count];
            for (int i = 0; i < count; i++) y[i] = (byte)rng.Next(10);
            string suffix = gzip ? ".gz" : "";
            File.WriteAllBytes(Path.Combine(_dir, images + suffix), IdxFile.Encode(IdxDataType.UByte, [count, h, w], pixels, gzip));
            File.WriteAllBytes(Path.Combine(_dir, labels + suffix), IdxFile.Encode(IdxDataType.UByte, [count], y, gzip));
            return (pixels, y);
        }
        var train = One(FashionMnist.TrainImagesFile, FashionMnist.TrainLabelsFile, n);
        One(FashionMnist.TestImagesFile, FashionMnist.TestLabelsFile, m);
        return train;
    }

    [TestCase(true)]
    [TestCase(false)]
    public void LoadsFolderOfSmallFiles(bool gzip)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var (pixels, labels) = WriteFake(37, 11, 6, 5, rng, gzip);
        var data = FashionMnist.Load(_dir);
        Assert.That(data.Train.Count, Is.EqualTo(37));
        Assert.That(data.Test.Count, Is.EqualTo(11));
        Assert.That((data.Train.Height, data.Train.Width, data.Train.Channels), Is.EqualTo((6, 5, 1)));
        Assert.That(data.Train.Pixels, Is.EqualTo(pixels));
        Assert.That(data.Train.Labels, Is.EqualTo(labels.Select(b => (int)b).ToArray()));
        Assert.That(FashionMnist.ClassNames, Has.Count.EqualTo(10));
        Assert.That(FashionMnist.ClassNames[9], Is.EqualTo("Ankle boot"));
    }

    [Test]
    public void WithoutAFolderLoadsFromTheEnvironmentFolderFirst()
    {
        var (pixels, _) = WriteFake(3, 2, 4, 4, new System.Random(TestUtil.FreshSeed()), gzip: false);
        string? saved = Environment.GetEnvironmentVariable(FashionMnist.FolderVariable);
        try
        {
            Environment.SetEnvironmentVariable(FashionMnist.FolderVariable, _dir);
            var candidates = FashionMnist.CandidateFolders();
            Assert.That(candidates[0], Is.EqualTo(_dir));
            Assert.That(candidates[^1], Is.EqualTo(FashionMnist.DebianFolder));
            Assert.That(FashionMnist.FindFolder(), Is.EqualTo(_dir));
            var data = FashionMnist.Load();
            Assert.That(data.Folder, Is.EqualTo(_dir));
            Assert.That(data.Train.Pixels, Is.EqualTo(pixels));
        }
        finally
        {
            Environment.SetEnvironmentVariable(FashionMnist.FolderVariable, saved);
        }
    }

    [Test]
    public void SplitTrainSubsamplesEachPartPerClass()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var pixels = new byte[60 * 2 * 2];
        rng.NextBytes(pixels);
        var labels = Enumerable.Range(0, 60).Select(i => i % 10).ToArray();
        var train = new LabeledImages(pixels, labels, 2, 2, 1, 10);
        var data = new FashionMnistData(train, train, _dir);
        var (all, validation) = data.SplitTrain(validationSize: 20, seed: 9);
        Assert.That((all.Count, validation.Count), Is.EqualTo((40, 20)));
        Assert.That(validation.ClassCounts(), Is.EqualTo(Enumerable.Repeat(2, 10).ToArray()));
        var (small, smallValidation) = data.SplitTrain(validationSize: 20, seed: 9, trainPerClass: 3, validationPerClass: 1);
        Assert.That(small.ClassCounts(), Is.EqualTo(Enumerable.Repeat(3, 10).ToArray()));
        Assert.That(smallValidation.ClassCounts(), Is.EqualTo(Enumerable.Repeat(1, 10).ToArray()));
        // Subsamples come from their own part: no validation image leaks into the training subsample.
        var validationImages = Enumerable.Range(0, validation.Count).Select(i => Convert.ToHexString(validation.Image(i))).ToHashSet();
        Assert.That(Enumerable.Range(0, smallValidation.Count).All(i => validationImages.Contains(Convert.ToHexString(smallValidation.Image(i)))));
        var trainImages = Enumerable.Range(0, all.Count).Select(i => Convert.ToHexString(all.Image(i))).ToHashSet();
        Assert.That(Enumerable.Range(0, small.Count).All(i => trainImages.Contains(Convert.ToHexString(small.Image(i)))));
    }

    [Test]
    public void MissingFileNamesItTheFolderAndTheInstallCommand()
    {
        WriteFake(5, 5, 4, 4, new System.Random(1));
        File.Delete(Path.Combine(_dir, FashionMnist.TestLabelsFile + ".gz"));
        var ex = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(_dir));
        Assert.That(ex!.Message, Does.Contain(FashionMnist.TestLabelsFile).And.Contain(_dir).And.Contain(FashionMnist.InstallCommand));
        string absent = Path.Combine(_dir, "absent");
        ex = Assert.Throws<FileNotFoundException>(() => FashionMnist.Load(absent));
        Assert.That(ex!.Message, Does.Contain(absent).And.Contain("does not exist"));
    }

    [Test]
    public void LabelCountMismatchNamesTheLabelsFile()
    {
        string images = Path.Combine(_dir, "img"), labels = Path.Combine(_dir, "lbl");
        File.WriteAllBytes(images, IdxFile.Encode(IdxDataType.UByte, [4, 2, 2], new byte[16]));
        File.WriteAllBytes(labels, IdxFile.Encode(IdxDataType.UByte, [3], new byte[3], gzip: true));
        var ex = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadPair(images, labels));
        Assert.That(ex!.Message, Does.Contain(labels).And.Contain("expected 4 labels").And.Contain("found 3"));
    }

    [Test]
    public void LabelOutOfRangeNamesTheFileAndIndex()
    {
        string images = Path.Combine(_dir, "img"), labels = Path.Combine(_dir, "lbl");
        File.WriteAllBytes(images, IdxFile.Encode(IdxDataType.UByte, [3, 2, 2], new byte[12]));
        File.WriteAllBytes(labels, IdxFile.Encode(IdxDataType.UByte, [3], [1, 10, 2]));
        var ex = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadPair(images, labels));
        Assert.That(ex!.Message, Does.Contain(labels).And.Contain("below 10").And.Contain("found 10 at index 1"));
    }

    [Test]
    public void WrongShapeNamesTheImagesFile()
    {
        string images = Path.Combine(_dir, "img"), labels = Path.Combine(_dir, "lbl");
        File.WriteAllBytes(images, IdxFile.Encode(IdxDataType.UByte, [3, 4], new byte[12]));
        File.WriteAllBytes(labels, IdxFile.Encode(IdxDataType.UByte, [3], [1, 1, 2]));
        var ex = Assert.Throws<InvalidDataException>(() => FashionMnist.LoadPair(images, labels));
        Assert.That(ex!.Message, Does.Contain(images).And.Contain("[N, H, W]"));
    }

    [Test]
    public void InconsistentTrainAndTestSizesAreRejected()
    {
        File.WriteAllBytes(Path.Combine(_dir, FashionMnist.TrainImagesFile), IdxFile.Encode(IdxDataType.UByte, [2, 3, 3], new byte[18]));
        File.WriteAllBytes(Path.Combine(_dir, FashionMnist.TrainLabelsFile), IdxFile.Encode(IdxDataType.UByte, [2], [0, 1]));
        File.WriteAllBytes(Path.Combine(_dir, FashionMnist.TestImagesFile), IdxFile.Encode(IdxDataType.UByte, [2, 4, 4], new byte[32]));
        File.WriteAllBytes(Path.Combine(_dir, FashionMnist.TestLabelsFile), IdxFile.Encode(IdxDataType.UByte, [2], [0, 1]));
        var ex = Assert.Throws<InvalidDataException>(() => FashionMnist.Load(_dir));
        Assert.That(ex!.Message, Does.Contain("4x4").And.Contain("3x3"));
    }

    /// <summary>The real data, where scripts/fetch-fashion-mnist.sh or the Debian package put it.</summary>
    [Test]
    public void RealFashionMnistHasTheOfficialCounts()
    {
        string? folder = FashionMnist.FindFolder();
        if (folder == null)
            Assert.Ignore($"Fashion-MNIST not installed (searched {string.Join(", ", FashionMnist.CandidateFolders())}); run {FashionMnist.InstallCommand}");
        var data = FashionMnist.Load(folder);
        Assert.That(data.Train.Count, Is.EqualTo(60000));
        Assert.That(data.Test.Count, Is.EqualTo(10000));
        Assert.That((data.Train.Height, data.Train.Width), Is.EqualTo((28, 28)));
        Assert.That(data.Train.ClassCounts(), Is.EqualTo(Enumerable.Repeat(6000, 10).ToArray()));
        Assert.That(data.Test.ClassCounts(), Is.EqualTo(Enumerable.Repeat(1000, 10).ToArray()));
        var (train, validation) = data.SplitTrain();
        Assert.That(train.Count, Is.EqualTo(55000));
        Assert.That(validation.ClassCounts(), Is.EqualTo(Enumerable.Repeat(500, 10).ToArray()));
    }
}
