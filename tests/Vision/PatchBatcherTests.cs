using NativeSparsity.Models.Vision;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Vision;

[TestFixture]
public class PatchBatcherTests
{
    private static LabeledImages RandomImages(System.Random rng, int n, int h, int w, int c)
    {
        var pixels = new byte[n * h * w * c];
        rng.NextBytes(pixels);
        var labels = new int[n];
        for (int i = 0; i < n; i++) labels[i] = rng.Next(10);
        return new LabeledImages(pixels, labels, h, w, c, 10);
    }

    /// <summary>Reference augmentation: build the zero-padded image, crop, then mirror the crop.</summary>
    private static byte[] ReferenceAugment(ReadOnlySpan<byte> src, int h, int w, int c, int pad, int dy, int dx, bool flip)
    {
        int ph = h + 2 * pad, pw = w + 2 * pad;
        var padded = new byte[ph, pw, c];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) for (int ch = 0; ch < c; ch++)
            padded[y + pad, x + pad, ch] = src[(y * w + x) * c + ch];
        var crop = new byte[h, w, c];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) for (int ch = 0; ch < c; ch++)
            crop[y, x, ch] = padded[y + pad + dy, x + pad + dx, ch];
        var result = new byte[h * w * c];
        for (int y = 0; y < h; y++) for (int x = 0; x < w; x++) for (int ch = 0; ch < c; ch++)
            result[(y * w + x) * c + ch] = flip ? crop[y, w - 1 - x, ch] : crop[y, x, ch];
        return result;
    }

    /// <summary>Reference patchify: for each patch, walk its rows and columns.</summary>
    private static double[] ReferencePatchify(double[] image, int h, int w, int c, int s)
    {
        var result = new List<double>();
        for (int py = 0; py < h / s; py++)
        for (int px = 0; px < w / s; px++)
        for (int i = 0; i < s; i++)
        for (int j = 0; j < s; j++)
        for (int ch = 0; ch < c; ch++)
            result.Add(image[((py * s + i) * w + px * s + j) * c + ch]);
        return result.ToArray();
    }

    [TestCase(6, 6, 1, 3)]
    [TestCase(28, 28, 1, 7)]
    [TestCase(28, 28, 1, 4)]
    [TestCase(6, 9, 2, 3)]
    [TestCase(5, 5, 3, 5)]
    [TestCase(1, 1, 1, 1)]
    public void PatchifyMatchesReference(int h, int w, int c, int s)
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var image = TestUtil.RandomFloats(rng, h * w * c);
        var patches = new float[image.Length];
        PatchBatcher.Patchify(image, patches, h, w, c, s);
        TestUtil.AssertClose(patches, ReferencePatchify(image.Select(v => (double)v).ToArray(), h, w, c, s), 0, 0, "patches");
    }

    [Test]
    public void PatchSizeThatDoesNotDivideIsRejected()
    {
        var ex = Assert.Throws<ArgumentException>(() => new PatchBatcher(28, 28, 1, 5, PixelNormalization.UnitScale));
        Assert.That(ex!.Message, Does.Contain("patch size 5").And.Contain("28x28"));
    }

    [Test]
    public void AugmentationMatchesReferenceAndIsKeyed()
    {
        int fresh = TestUtil.FreshSeed();
        var rng = new System.Random(fresh);
        int h = rng.Next(3, 12), w = rng.Next(3, 12), c = rng.Next(1, 3);
        var images = RandomImages(rng, 64, h, w, c);
        var aug = new Augmentation(Padding: rng.Next(1, 4), FlipProbability: 0.5f);
        int flips = 0;
        var seenOffsets = new HashSet<(int, int)>();
        for (int index = 0; index < images.Count; index++)
        {
            var (dy, dx, flip) = aug.Draw((ulong)fresh, 3, index);
            Assert.That(dy, Is.InRange(-aug.Padding, aug.Padding));
            Assert.That(dx, Is.InRange(-aug.Padding, aug.Padding));
            flips += flip ? 1 : 0;
            seenOffsets.Add((dy, dx));
            var dst = new byte[images.PixelsPerImage];
            aug.Apply(images.Image(index), dst, h, w, c, (ulong)fresh, 3, index);
            Assert.That(dst, Is.EqualTo(ReferenceAugment(images.Image(index), h, w, c, aug.Padding, dy, dx, flip)), $"image {index}");
            Assert.That(aug.Draw((ulong)fresh, 3, index), Is.EqualTo((dy, dx, flip)));
        }
        Assert.That(flips, Is.InRange(12, 52), "flip probability 0.5 over 64 images");
        Assert.That(seenOffsets.Count, Is.GreaterThan(3));
        int differ = Enumerable.Range(0, 64).Count(i => aug.Draw((ulong)fresh, 3, i) != aug.Draw((ulong)fresh, 4, i));
        Assert.That(differ, Is.GreaterThan(32), "another epoch draws anew");
    }

    [Test]
    public void BatchEqualsNormalisedAugmentedPatchifiedImages()
    {
        int fresh = TestUtil.FreshSeed();
        var rng = new System.Random(fresh);
        var images = RandomImages(rng, 13, 6, 9, 2);
        var norm = PixelNormalization.FromImages(images);
        var batcher = PatchBatcher.For(images, 3, norm, new Augmentation(2, 0.5f));
        int[] indices = [12, 0, 5, 5, 7];
        foreach (bool augment in new[] { false, true })
        {
            var batch = batcher.MakeBatch(images, indices, (ulong)fresh, 2, augment);
            Assert.That(batch.BatchSize, Is.EqualTo(5));
            Assert.That((batch.PatchCount, batch.PatchDim, batch.Rows), Is.EqualTo((6, 18, 30)));
            Assert.That(batch.Labels, Is.EqualTo(indices.Select(i => images.Labels[i]).ToArray()));
            var expected = new List<double>();
            foreach (int i in indices)
            {
                byte[] pixels = images.Image(i).ToArray();
                if (augment)
                {
                    var (dy, dx, flip) = batcher.Augmentation.Draw((ulong)fresh, 2, i);
                    pixels = ReferenceAugment(pixels, 6, 9, 2, 2, dy, dx, flip);
                }
                var normalised = pixels.Select(v => (v / 255.0 - norm.Mean) / norm.Std).ToArray();
                expected.AddRange(ReferencePatchify(normalised, 6, 9, 2, 3));
            }
            TestUtil.AssertClose(batch.Patches, expected.ToArray(), 1e-6, 1e-6, augment ? "augmented batch" : "plain batch");
            Assert.That(batcher.MakeBatch(images, indices, (ulong)fresh, 2, augment).Patches, Is.EqualTo(batch.Patches));
        }
    }

    [Test]
    public void NormalisationIsTheTrainingPixelsMeanAndStd()
    {
        var rng = new System.Random(TestUtil.FreshSeed());
        var images = RandomImages(rng, 7, 5, 3, 1);
        var norm = PixelNormalization.FromImages(images);
        double mean = images.Pixels.Average(v => v / 255.0);
        double std = Math.Sqrt(images.Pixels.Average(v => (v / 255.0 - mean) * (v / 255.0 - mean)));
        Assert.That(norm.Mean, Is.EqualTo(mean).Within(1e-6));
        Assert.That(norm.Std, Is.EqualTo(std).Within(1e-6));
        var flat = norm.Normalize(images);
        Assert.That(flat.Average(v => (double)v), Is.EqualTo(0).Within(1e-5));
    }

    [Test]
    public void EpochVisitsEveryImageOnceWithAPartialLastBatch()
    {
        int fresh = TestUtil.FreshSeed();
        var images = RandomImages(new System.Random(fresh), 23, 4, 4, 1);
        var batcher = PatchBatcher.For(images, 2, PixelNormalization.UnitScale);
        var batches = batcher.Epoch(images, 5, (ulong)fresh, 1, augment: true).ToList();
        Assert.That(batches.Select(b => b.BatchSize), Is.EqualTo(new[] { 5, 5, 5, 5, 3 }));
        var visited = batches.SelectMany(b => b.ImageIndices).ToArray();
        Assert.That(visited.Order(), Is.EqualTo(Enumerable.Range(0, 23)));
        Assert.That(visited, Is.EqualTo(PatchBatcher.EpochOrder(23, (ulong)fresh, 1)));
        Assert.That(visited, Is.Not.EqualTo(PatchBatcher.EpochOrder(23, (ulong)fresh, 2)));
        var third = batcher.EpochBatch(images, 5, 2, (ulong)fresh, 1, augment: true);
        Assert.That(third.Patches, Is.EqualTo(batches[2].Patches));
        var unshuffled = batcher.Epoch(images, 5, (ulong)fresh, 1, augment: false, shuffle: false).SelectMany(b => b.ImageIndices);
        Assert.That(unshuffled, Is.EqualTo(Enumerable.Range(0, 23)));
    }
}
