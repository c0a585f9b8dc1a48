using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Bert;
using NativeSparsity.Tests.Engine;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

public class BertPretrainerTests
{
    private const int Vocab = 40, First = 5, Cls = 2, Sep = 3, Mask = 4;

    /// <summary>
    /// A stream whose every training window repeats one random token: a masked token is then
    /// whatever the rest of its sequence says, learnable only through attention (unigram
    /// statistics alone stay near ln(vocab)).
    /// </summary>
    private static int[] RepeatedTokenWindows(int windows, int body, int seed)
    {
        var rng = new System.Random(seed);
        var tokens = new int[windows * body];
        for (int w = 0; w < windows; w++) tokens.AsSpan(w * body, body).Fill(First + rng.Next(Vocab - First));
        return tokens;
    }

    private static BertPretrainer NewTrainer(CpuBackend be, int[] corpus, PretrainSettings settings, out BertParameters p)
    {
        var cfg = new BertConfig
        {
            VocabSize = Vocab, HiddenSize = 32, NumAttentionHeads = 2, NumHiddenLayers = 2, IntermediateSize = 64,
            MaxPositionEmbeddings = settings.SequenceLength,
        };
        p = new BertParameters(be, new BertParameterLayout(cfg, BertHeads.PreTraining));
        p.Initialize(settings.Seed);
        var windows = new TokenWindows(new ArrayTokenStream(corpus), settings.SequenceLength, Cls, Sep, settings.Seed);
        return new BertPretrainer(be, p, settings, windows, new MlmMasking(Mask, First, Vocab));
    }

    [Test]
    public void TinyBertLearnsAPatternedCorpus()
    {
        int seed = TestUtil.FreshSeed();
        var be = new CpuBackend();
        var settings = new PretrainSettings { BatchSize = 8, SequenceLength = 24, Steps = 300, LearningRate = 3e-3f, WarmupSteps = 30, Seed = (ulong)seed };
        using var trainer = NewTrainer(be, RepeatedTokenWindows(1000, settings.SequenceLength - 2, seed), settings, out var p);
        using var _ = p;
        var before = trainer.EvaluateHeldOut(4);
        for (int s = 0; s < settings.Steps; s++) { var r = trainer.TrainStep(); if (s % 50 == 0) TestContext.Out.WriteLine($"step {r.Step} loss {r.Loss:F3} lr {r.LearningRate:g3} |g| {r.GradNorm:g3}"); }
        var after = trainer.EvaluateHeldOut(4);
        TestContext.Out.WriteLine($"held-out MLM loss {before.Loss:F3} -> {after.Loss:F3}, accuracy {before.Accuracy:P1} -> {after.Accuracy:P1}");
        Assert.That(after.Loss, Is.LessThan(before.Loss - 1.5), "MLM loss should fall clearly");
        // Unigram guessing gets ~1/35; reading the context gets the token right.
        Assert.That(after.Accuracy, Is.GreaterThan(0.5));
    }

    [Test]
    public void ResumedRunMatchesUninterruptedRunBitwise()
    {
        int seed = TestUtil.FreshSeed();
        var corpus = RepeatedTokenWindows(400, 14, seed);
        var settings = new PretrainSettings { BatchSize = 4, SequenceLength = 16, Steps = 6, LearningRate = 1e-3f, WarmupSteps = 2, Seed = (ulong)seed, GradientAccumulation = 2 };
        var be = new CpuBackend();
        float[] straight;
        var lossesStraight = new List<double>();
        using (var a = NewTrainer(be, corpus, settings, out var pa))
        using (pa)
        {
            for (int s = 0; s < 6; s++) lossesStraight.Add(a.TrainStep().Loss);
            straight = TestUtil.Download(pa.Values);
        }
        string dir = Path.Combine(Path.GetTempPath(), "nsparse-resume-" + Guid.NewGuid().ToString("N"));
        try
        {
            var lossesResumed = new List<double>();
            using (var b = NewTrainer(be, corpus, settings, out var pb))
            using (pb)
            {
                for (int s = 0; s < 3; s++) lossesResumed.Add(b.TrainStep().Loss);
                b.SaveCheckpoint(dir);
            }
            using var c = NewTrainer(be, corpus, settings with { }, out var pc);
            using var _ = pc;
            be.Fill(pc.Values, 0f);   // prove the weights come from the checkpoint
            c.LoadCheckpoint(dir);
            Assert.That(c.Step, Is.EqualTo(3));
            for (int s = 0; s < 3; s++) lossesResumed.Add(c.TrainStep().Loss);
            var resumed = TestUtil.Download(pc.Values);
            Assert.That(lossesResumed, Is.EqualTo(lossesStraight));
            Assert.That(resumed.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(straight.Select(BitConverter.SingleToInt32Bits)));
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, true); }
    }
}

public class NextSentenceWindowsTests
{
    [Test]
    public void PairsAreContinuationsOrRandomSpansWithTokenTypesAndLabels()
    {
        int seed = TestUtil.FreshSeed();
        // Token i of the stream is 100 + i, so a continuation is recognisable by its ids.
        var tokens = Enumerable.Range(0, 20_000).Select(i => 100 + i).ToArray();
        const int seq = 16;
        var windows = new TokenWindows(new ArrayTokenStream(tokens), seq, clsId: 1, sepId: 2, seed: (ulong)seed, nextSentence: true);
        var batch = windows.TrainBatch(step: 3, micro: 0, microBatches: 1, batchSize: 400);
        int lenA = (seq - 3 + 1) / 2, lenB = seq - 3 - lenA, notNext = 0;
        for (int r = 0; r < 400; r++)
        {
            var row = batch.InputIds.AsSpan(r * seq, seq);
            Assert.That(row[0], Is.EqualTo(1)); Assert.That(row[1 + lenA], Is.EqualTo(2)); Assert.That(row[seq - 1], Is.EqualTo(2));
            var types = batch.TokenTypeIds.AsSpan(r * seq, seq).ToArray();
            Assert.That(types.Take(lenA + 2).All(t => t == 0) && types.Skip(lenA + 2).All(t => t == 1), Is.True);
            for (int j = 2; j < 1 + lenA; j++) Assert.That(row[j], Is.EqualTo(row[j - 1] + 1), "A is contiguous");
            for (int j = 3 + lenA; j < seq - 1; j++) Assert.That(row[j], Is.EqualTo(row[j - 1] + 1), "B is contiguous");
            bool continues = row[2 + lenA] == row[lenA] + 1;
            int label = batch.NextSentenceLabels![r];
            Assert.That(continues, Is.EqualTo(label == 0), $"row {r}: label {label}");
            notNext += label;
        }
        Assert.That(notNext / 400.0, Is.EqualTo(0.5).Within(0.15));
        Assert.That(lenB, Is.GreaterThan(0));
    }

    [Test]
    public void PretrainingWithNextSentenceTrainsAndResumesBitwise()
    {
        int seed = TestUtil.FreshSeed();
        var be = new CpuBackend();
        var corpus = Enumerable.Range(0, 6000).Select(i => 5 + (i * 7919 % 35)).ToArray();
        var settings = new PretrainSettings { BatchSize = 4, SequenceLength = 16, Steps = 4, LearningRate = 1e-3f, WarmupSteps = 1, Seed = (ulong)seed, NextSentence = true };
        var cfg = new BertConfig { VocabSize = 40, HiddenSize = 16, NumAttentionHeads = 2, NumHiddenLayers = 1, IntermediateSize = 32, MaxPositionEmbeddings = 16 };
        float[] Run(int stopAt, string? dir, bool resume)
        {
            using var p = new BertParameters(be, new BertParameterLayout(cfg, BertHeads.PreTraining with { NextSentence = true }));
            p.Initialize(settings.Seed);
            var windows = new TokenWindows(new ArrayTokenStream(corpus), 16, 2, 3, settings.Seed, nextSentence: true);
            using var t = new BertPretrainer(be, p, settings, windows, new MlmMasking(4, 5, 40));
            if (resume) t.LoadCheckpoint(dir!);
            while (t.Step < stopAt) Assert.That(double.IsFinite(t.TrainStep().Loss), Is.True);
            if (dir != null && !resume) t.SaveCheckpoint(dir);
            return TestUtil.Download(p.Values);
        }
        string ckpt = Path.Combine(Path.GetTempPath(), "nsparse-nsp-" + Guid.NewGuid().ToString("N"));
        try
        {
            var straight = Run(4, null, false);
            Run(2, ckpt, false);
            var resumed = Run(4, ckpt, true);
            Assert.That(resumed.Select(BitConverter.SingleToInt32Bits), Is.EqualTo(straight.Select(BitConverter.SingleToInt32Bits)));
        }
        finally { if (Directory.Exists(ckpt)) Directory.Delete(ckpt, true); }
    }
}
