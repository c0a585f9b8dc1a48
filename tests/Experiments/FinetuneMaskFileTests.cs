using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Experiments.Commands;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Bert;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

public class FinetuneMaskFileTests
{
    [Test]
    public void SaveMaskWritesTheMaskUsedAndMaskFinetunesWithIt()
    {
        int seed = TestUtil.FreshSeed();
        string root = FinetuneFixtures.TempFolder("ft-maskfile");
        try
        {
            string ckpt = Path.Combine(root, "pretrained");
            FinetuneFixtures.WriteCheckpoint(ckpt, (ulong)seed, hidden: 16);
            var task = FinetuneFixtures.ContainsApple(16, 8, seed);
            var train = new FinetuneSettings { Epochs = 1, BatchSize = 8, LearningRate = 1e-3f, Seed = (ulong)seed };
            string maskPath = Path.Combine(root, "m.safetensors");
            var first = FinetuneCommand.Run(new FinetuneRunOptions { Checkpoint = ckpt, Task = "x", Sparsity = 0.4, SaveMaskPath = maskPath, Quiet = true, Train = train }, task);
            Assert.That(File.Exists(maskPath));

            // The file holds the global-magnitude mask of the pre-trained weights.
            var be = new CpuBackend();
            using var before = BertCheckpoint.Load(ckpt, be, BertHeads.SequenceClassification(2)).Parameters;
            var expected = Masks.GlobalMagnitude(before.PrunableSet(), 0.4);
            var loaded = MaskFile.Load(maskPath, before.PrunableSet(), be.Allocate(DType.U8, checked((int)before.Layout.PrunableLength)));
            Assert.That(loaded.Keep.U8Span().ToArray(), Is.EqualTo(expected.Keep.U8Span().ToArray()));

            // A random mask from a file is the one used: same pruned count, and the saved checkpoint is zero exactly there.
            var random = Masks.RandomGlobal(before.PrunableSet(), 0.3, (ulong)seed);
            string randomPath = Path.Combine(root, "r.safetensors");
            MaskFile.Save(randomPath, random);
            string outDir = Path.Combine(root, "out");
            var second = FinetuneCommand.Run(new FinetuneRunOptions { Checkpoint = ckpt, Task = "x", MaskPath = randomPath, OutputFolder = outDir, Save = true, Quiet = true, Train = train }, task);
            Assert.That(second.PrunedCount, Is.EqualTo(random.PrunedCount()));
            Assert.That(first.PrunedCount, Is.EqualTo(expected.PrunedCount()));
            using var after = BertCheckpoint.Load(Path.Combine(outDir, "checkpoint"), be, BertHeads.SequenceClassification(2)).Parameters;
            var w = TestUtil.Download(after.PrunableValues);
            var keep = random.Keep.U8Span().ToArray();
            for (int i = 0; i < w.Length; i++)
                if (keep[i] == 0) Assert.That(BitConverter.SingleToInt32Bits(w[i]), Is.Zero, $"pruned weight {i} must stay +0");

            Assert.Throws<ArgumentException>(() => FinetuneCommand.Run(new FinetuneRunOptions { Checkpoint = ckpt, Task = "x", MaskPath = randomPath, Sparsity = 0.5, Quiet = true, Train = train }, task));
            Assert.Throws<FileNotFoundException>(() => FinetuneCommand.Run(new FinetuneRunOptions { Checkpoint = ckpt, Task = "x", MaskPath = Path.Combine(root, "none"), Quiet = true, Train = train }, task));
        }
        finally { if (Directory.Exists(root)) Directory.Delete(root, true); }
    }
}
