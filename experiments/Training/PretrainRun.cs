using System.Globalization;
using System.Text.Json;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Experiments.Reporting;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Data.Corpus;
using NativeSparsity.Models.Text;
using NativeSparsity.Engine.IO;

namespace NativeSparsity.Experiments.Training;

/// <summary>Everything one pre-training run needs; the defaults make a quick CPU run on the embedded corpus.</summary>
public sealed record PretrainRunOptions
{
    public required string OutputFolder { get; init; }
    public string Device { get; init; } = "cpu";
    public int Threads { get; init; }
    public string Preset { get; init; } = "tiny";
    public int? Layers { get; init; }
    public int? Hidden { get; init; }
    public int VocabSize { get; init; } = 8192;
    /// <summary>Text files or a folder of *.txt; null uses the embedded WordNet corpus.</summary>
    public IReadOnlyList<string>? Data { get; init; }
    public double DataFraction { get; init; } = 1.0;
    public ulong DataSeed { get; init; }
    public string? CacheFolder { get; init; }
    public PretrainSettings Train { get; init; } = new();
    public ProbeSettings Probe { get; init; } = new();
    public int CheckpointEvery { get; init; } = 500;
    public int KeepLast { get; init; } = 2;
    /// <summary>Also keep every checkpoint whose step is a multiple of this (0: only the last few).</summary>
    public int KeepEvery { get; init; }
    public int LogEvery { get; init; } = 10;
    public bool Resume { get; init; }
    public bool Quiet { get; init; }
}

/// <summary>What a finished run measured.</summary>
public sealed record PretrainRunSummary(long Steps, double TrainSeconds, double ProbeSeconds, string ProbeCsv, string LastCheckpoint, string Backend);

/// <summary>
/// A pre-training run in a folder: prepares (or reuses) the tokenized corpus, trains with MLM,
/// probes sparsity every K steps, writes train_log.csv, probe.csv/probe_layers.csv/probe.jsonl
/// and checkpoints under checkpoints/step-NNNNNNN, and resumes from the last checkpoint bit for bit.
/// </summary>
public static class PretrainRun
{
    public const string CheckpointsFolder = "checkpoints";

    public static string DefaultCacheFolder =>
        Environment.GetEnvironmentVariable("NSPARSE_CACHE") is { Length: > 0 } c ? c
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "nsparse");

    public static IDocumentSource OpenSource(IReadOnlyList<string>? data)
    {
        if (data == null || data.Count == 0) return new WordNetCorpus();
        if (data.Count == 1 && Directory.Exists(data[0])) return TextFileCorpus.FromFolder(data[0]);
        foreach (var f in data)
            if (!File.Exists(f)) throw new FileNotFoundException($"--data: '{f}' is neither a folder nor a file", f);
        return new TextFileCorpus(data);
    }

    public static PreparedData PrepareData(PretrainRunOptions o, Action<string> say)
    {
        var source = OpenSource(o.Data);
        string cache = o.CacheFolder ?? Path.Combine(DefaultCacheFolder, "corpora");
        say($"data: {source.Description}, fraction {o.DataFraction}, vocabulary {o.VocabSize} (cache {cache})");
        var progress = new ProgressLine(100, unit: "%");
        var data = PretrainingData.Prepare(source, cache, o.VocabSize, o.DataFraction, o.DataSeed,
            new Progress<long>(n => { if (!o.Quiet) progress.Update(0, $"counting tokens: {n} documents"); }),
            new Progress<ShardBuildProgress>(p => { if (!o.Quiet) progress.Update((long)((p.SourceProgress ?? 0) * 100), $"tokenizing: {p.DocumentsKept} documents, {p.Tokens} tokens"); }),
            say);
        if (!o.Quiet) progress.Finish();
        say($"data: {data.Corpus.DocumentCount} documents, {data.Corpus.TokenCount} tokens{(data.Reused ? " (cached)" : "")}");
        return data;
    }

    public static BertConfig ConfigFor(PretrainRunOptions o, int vocab)
    {
        var cfg = BertConfig.FromPreset(o.Preset, vocab, Math.Max(512, o.Train.SequenceLength));
        if (o.Layers is int l) cfg = cfg with { NumHiddenLayers = l };
        if (o.Hidden is int h) cfg = cfg with { HiddenSize = h, NumAttentionHeads = Math.Max(1, h / 64), IntermediateSize = 4 * h };
        cfg.Validate();
        return cfg;
    }

    /// <param name="waitForFolder">Wait while another process writes the folder (a shared cache), instead of refusing.</param>
    public static PretrainRunSummary Run(PretrainRunOptions o, Action<string>? log = null, bool waitForFolder = false)
    {
        Action<string> say = log ?? (o.Quiet ? _ => { } : Console.WriteLine);
        using var folderLock = waitForFolder ? FolderLock.AcquireWaiting(o.OutputFolder, "pretrain", say) : FolderLock.Acquire(o.OutputFolder, "pretrain");
        string checkpoints = Path.Combine(o.OutputFolder, CheckpointsFolder);
        string settingsPath = Path.Combine(o.OutputFolder, "run.json");
        string settingsJson = SettingsJson.ToIndentedString(o with { Resume = false, Quiet = false });
        string? resumeFrom = o.Resume ? LatestCheckpoint(checkpoints) : null;
        if (resumeFrom != null && File.Exists(settingsPath) && File.ReadAllText(settingsPath) != settingsJson)
            throw new InvalidOperationException($"{settingsPath}: the run in this folder used other settings; resume with the same options or use another --out");
        if (resumeFrom == null && !o.Resume && Directory.Exists(checkpoints) && Directory.EnumerateDirectories(checkpoints).Any())
            throw new InvalidOperationException($"{o.OutputFolder} already holds checkpoints; pass --resume to continue that run or choose another --out");
        File.WriteAllText(settingsPath, settingsJson);

        using var backend = BackendFactory.Create(o.Device, out string backendName, o.Threads);
        say($"device: {backendName}");
        using var data = PrepareData(o, say);
        var special = data.Tokenizer.Special;
        var cfg = ConfigFor(o, data.Tokenizer.VocabSize);
        using var parameters = new BertParameters(backend, new BertParameterLayout(cfg, BertHeads.PreTraining with { NextSentence = o.Train.NextSentence }));
        parameters.Initialize(o.Train.Seed);
        say($"model: {o.Preset} ({cfg.NumHiddenLayers} layers, hidden {cfg.HiddenSize}, {cfg.NumAttentionHeads} heads), " +
            $"{parameters.Layout.ParameterCount:N0} parameters, {parameters.Layout.PrunableLength:N0} prunable");
        var windows = new TokenWindows(new CorpusTokenStream(data.Corpus), o.Train.SequenceLength, special.Cls, special.Sep, o.Train.Seed,
                                       nextSentence: o.Train.NextSentence);
        var masking = new MlmMasking(special.Mask, FirstOrdinaryId(special), data.Tokenizer.VocabSize, o.Train.MaskProbability);
        using var trainer = new BertPretrainer(backend, parameters, o.Train, windows, masking);
        using var probe = new SparsityProbe(trainer, o.Probe);
        var probeLog = new ProbeLog(o.OutputFolder, o.Probe.Levels);
        var trainLog = new TrainLog(Path.Combine(o.OutputFolder, "train_log.csv"));
        ProbedTrainingLoop.Restore(trainer, resumeFrom, probeLog, trainLog, say);
        say($"training {o.Train.Steps} steps of {o.Train.BatchSize}x{o.Train.SequenceLength} tokens" +
            (o.Train.GradientAccumulation > 1 ? $" x{o.Train.GradientAccumulation} accumulation" : "") +
            $" ({windows.TrainWindows} training windows, {windows.HeldOut} held out); probe every {o.Probe.Every} steps");

        return ProbedTrainingLoop.Run(trainer, probe, probeLog, trainLog, o, checkpoints, resumeFrom, tmp => data.Tokenizer.Save(tmp), "MLM acc", backendName, say);
    }

    /// <summary>Ordinary tokens start after the specials (compact BPE puts them at 0..4).</summary>
    private static int FirstOrdinaryId(SpecialTokenIds s) => new[] { s.Pad, s.Cls, s.Sep, s.Mask, s.Unk }.Max() + 1;

    public static string? LatestCheckpoint(string folder) =>
        CheckpointFolders(folder).Where(d => File.Exists(Path.Combine(d.Path, BertPretrainer.StateFile))).Select(d => d.Path).LastOrDefault();

    /// <summary>
    /// The finished checkpoint folders (step-NNNNNNN) by step. A writer's temporary "step-N.tmp-..." and
    /// renamed-aside "step-N.old-..." siblings are not checkpoints: a reader must neither resume from
    /// nor choke on them while another process writes.
    /// </summary>
    public static IEnumerable<(long Step, string Path)> CheckpointFolders(string folder)
    {
        if (!Directory.Exists(folder)) return [];
        return Directory.EnumerateDirectories(folder, "step-*")
            .Select(d => (Name: System.IO.Path.GetFileName(d), Path: d))
            .Where(d => d.Name.Length > 5 && d.Name.AsSpan(5).IndexOfAnyExceptInRange('0', '9') < 0)
            .Select(d => (long.Parse(d.Name.AsSpan(5), CultureInfo.InvariantCulture), d.Path))
            .OrderBy(d => d.Item1).ToList();
    }

    internal static void Prune(string folder, int keepLast, int keepEvery)
    {
        var all = CheckpointFolders(folder).ToList();
        foreach (var (step, path) in all.Take(Math.Max(0, all.Count - Math.Max(1, keepLast))))
        {
            if (keepEvery > 0 && step % keepEvery == 0) continue;
            Directory.Delete(path, recursive: true);
        }
    }
}

/// <summary>The token corpus as a stream for <see cref="TokenWindows"/>.</summary>
public sealed class CorpusTokenStream(TokenCorpus corpus) : ITokenStream
{
    public long Length => corpus.TokenCount;
    public void Read(long start, Span<int> destination) => corpus.CopyTokens(start, destination);
}

/// <summary>train_log.csv: one row per logged step.</summary>
public sealed class TrainLog(string path)
{
    public const string Header = "step,loss,learning_rate,grad_norm,step_seconds,tokens_per_second";

    public void TruncateAfter(long step)
    {
        if (!File.Exists(path) || step < 0) { File.WriteAllText(path, Header + "\n"); return; }
        var lines = File.ReadAllLines(path);
        File.WriteAllLines(path, new[] { Header }.Concat(lines.Skip(1).Where(l => long.Parse(l.Split(',')[0], CultureInfo.InvariantCulture) <= step)));
    }

    public void Append(PretrainStepResult r, long tokensPerStep) =>
        File.AppendAllText(path, string.Join(",", r.Step.ToString(CultureInfo.InvariantCulture), r.Loss.ToString("R", CultureInfo.InvariantCulture),
            r.LearningRate.ToString("R", CultureInfo.InvariantCulture), r.GradNorm.ToString("R", CultureInfo.InvariantCulture),
            r.Seconds.ToString("F4", CultureInfo.InvariantCulture), (tokensPerStep / r.Seconds).ToString("F1", CultureInfo.InvariantCulture)) + "\n");
}
