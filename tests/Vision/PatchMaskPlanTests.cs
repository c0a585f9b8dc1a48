using NativeSparsity.Models.Vision;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Vision;

[TestFixture]
public class PatchMaskPlanTests
{
    [TestCase(1, 1, 0.5)]
    [TestCase(3, 49, 0.75)]
    [TestCase(5, 16, 0.6)]
    [TestCase(4, 9, 0.0)]
    [TestCase(2, 7, 1.0)]
    public void HidesExactlyRoundRatioTimesPPerImage(int batch, int patches, double ratio)
    {
        ulong seed = (ulong)TestUtil.FreshSeed();
        var plan = PatchMaskPlan.Create(batch, patches, ratio, seed, step: 11);
        int k = (int)Math.Floor(ratio * patches + 0.5);
        Assert.That(plan.MaskedPerImage, Is.EqualTo(k));
        for (int b = 0; b < batch; b++)
            Assert.That(plan.Mask.Skip(b * patches).Take(patches).Count(m => m == 1), Is.EqualTo(k), $"image {b}");
        Assert.That(plan.Mask.All(m => m <= 1));
        Assert.That(plan.MaskedRows, Is.EqualTo(Enumerable.Range(0, batch * patches).Where(r => plan.Mask[r] == 1)));
        Assert.That(PatchMaskPlan.Create(batch, patches, ratio, seed, 11).Mask, Is.EqualTo(plan.Mask));
    }

    [Test]
    public void DifferentStepsAndImagesHideDifferentPatches()
    {
        ulong seed = (ulong)TestUtil.FreshSeed();
        var a = PatchMaskPlan.Create(8, 49, 0.5, seed, 1);
        var b = PatchMaskPlan.Create(8, 49, 0.5, seed, 2);
        Assert.That(b.Mask, Is.Not.EqualTo(a.Mask));
        var rows = Enumerable.Range(0, 8).Select(i => string.Concat(a.Mask.Skip(i * 49).Take(49))).Distinct().Count();
        Assert.That(rows, Is.EqualTo(8));
        // Every patch position gets hidden sometimes: the choice is not biased to the front.
        var hits = new int[49];
        for (int step = 0; step < 40; step++)
        {
            var p = PatchMaskPlan.Create(8, 49, 0.25, seed, step);
            for (int r = 0; r < p.Mask.Length; r++) hits[r % 49] += p.Mask[r];
        }
        Assert.That(hits.Min(), Is.GreaterThan(0));
    }

    [Test]
    public void TargetsAreTheHiddenPatchRows()
    {
        int fresh = TestUtil.FreshSeed();
        var rng = new System.Random(fresh);
        var pixels = new byte[3 * 28 * 28];
        rng.NextBytes(pixels);
        var images = new LabeledImages(pixels, [1, 2, 3], 28, 28, 1, 10);
        var batcher = PatchBatcher.For(images, 7, PixelNormalization.FromImages(images));
        var batch = batcher.MakeBatch(images, [2, 0, 1], (ulong)fresh, 0, augment: true);
        var plan = PatchMaskPlan.Create(batch, 0.6, (ulong)fresh, 5);
        var targets = plan.Targets(batch);
        Assert.That(plan.MaskedCount, Is.EqualTo(3 * 10));
        Assert.That(targets, Has.Length.EqualTo(plan.MaskedCount * 49));
        int m = 0;
        for (int row = 0; row < batch.Rows; row++)
        {
            if (plan.Mask[row] == 0) continue;
            Assert.That(targets.AsSpan(m * 49, 49).ToArray(), Is.EqualTo(batch.Patches.AsSpan(row * 49, 49).ToArray()), $"row {row}");
            m++;
        }
        Assert.That(m, Is.EqualTo(plan.MaskedCount));
        Assert.Throws<ArgumentException>(() => plan.Targets(batch.Patches, 48));
    }
}
