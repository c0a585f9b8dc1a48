using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Text;

namespace NativeSparsity.Experiments.Studies;

/// <summary>Which model family a fine-tuning study runs.</summary>
public enum StudyModel { Bert, Vit }

/// <summary>
/// A task as the study reports it: its main metric, majority baseline (NaN for regression), split sizes,
/// and the bag-of-words baseline's main metric on the same split (NaN where the family has none).
/// </summary>
public sealed record StudyTask(string Name, string Metric, double MajorityBaseline, int Train, int Eval, double BagOfWordsBaseline = double.NaN);

/// <summary>
/// What the essential study needs from a model family: the pre-trained prunable weights (on the
/// host, for the masks), one fine-tuning cell with a fixed mask, and the family's words in the report.
/// </summary>
internal interface IStudyFamily : IDisposable
{
    /// <summary>"BERT", "ViT": the report's title.</summary>
    string ModelName { get; }
    string Checkpoint { get; }
    IReadOnlyList<StudyTask> Tasks { get; }
    /// <summary>Seed of the first fine-tuning seed (seed index i uses BaseSeed + i); random masks draw from it too.</summary>
    ulong BaseSeed { get; }
    /// <summary>Name of the split the metric is measured on ("dev", "validation").</summary>
    string EvalSplit { get; }

    /// <summary>The pre-trained checkpoint's prunable matrices on the host; the family owns the memory.</summary>
    PrunableSet PretrainedPrunableSet();

    /// <summary>Fine-tunes one cell with the mask fixed (null: dense); does not store it.</summary>
    EssentialCell Finetune(IBackend backend, StudyTask task, string kind, double level, int seedIndex, MaskSet? mask, Action<FinetuneStep> onStep);

    /// <summary>The report's paragraphs on fine-tuning settings and on the metric.</summary>
    string SettingsParagraph(double[] levels);
    string MetricSentence { get; }

    /// <summary>Lines the family adds after the per-task table (may add nothing).</summary>
    void AppendFindings(StringBuilder md, IReadOnlyList<EssentialCell> cells);
}

/// <summary>The BERT family: WordNet/GLUE text tasks, <see cref="BertFinetuner"/>.</summary>
internal sealed class BertStudyFamily : IStudyFamily
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private readonly EssentialStudyOptions _o;
    private readonly ITokenizer _tokenizer;
    private readonly Dictionary<string, ClassificationTask> _tasks;
    private BertParameters? _pretrained;

    public BertStudyFamily(EssentialStudyOptions o, string checkpoint, ITokenizer tokenizer, IReadOnlyList<ClassificationTask> tasks)
    {
        _o = o; Checkpoint = checkpoint; _tokenizer = tokenizer;
        _tasks = tasks.ToDictionary(t => t.Name);
        Tasks = tasks.Select(Describe).ToList();
    }

    public static StudyTask Describe(ClassificationTask t) =>
        new(t.Name, t.MainMetric.Name(), t.IsRegression ? double.NaN : t.MajorityBaseline(t.EvaluationSplit), t.Train.Count, t.Dev.Count,
            global::NativeSparsity.Experiments.Tasks.BagOfWordsBaseline.Score(t, t.EvaluationSplit));

    public ClassificationTask Task(StudyTask t) => _tasks[t.Name];

    public string ModelName => "BERT";
    public string Checkpoint { get; }
    public IReadOnlyList<StudyTask> Tasks { get; }
    public ulong BaseSeed => _o.Train.Seed;
    public string EvalSplit => "dev";

    public PrunableSet PretrainedPrunableSet()
    {
        _pretrained ??= BertCheckpoint.Load(Checkpoint, new CpuBackend(), BertHeads.SequenceClassification(2)).Parameters;
        return _pretrained.PrunableSet();
    }

    public EssentialCell Finetune(IBackend backend, StudyTask task, string kind, double level, int seedIndex, MaskSet? mask, Action<FinetuneStep> onStep) =>
        EssentialStudy.FinetuneBert(_o, Checkpoint, backend, _tokenizer, _tasks[task.Name], kind, level, seedIndex, mask, onStep, null);

    public string SettingsParagraph(double[] levels)
    {
        var tr = _o.Train;
        return $"Fine-tuning: AdamW lr {tr.LearningRate:G4}, batch {tr.BatchSize}, {tr.Epochs} epochs, weight decay {tr.WeightDecay:G4}, no warm-up, linear decay to 0, eps {tr.AdamEpsilon:G3}, " +
               $"gradient clip {tr.MaxGradNorm:G3}, max sequence length {tr.MaxSequenceLength}{(tr.MaxSteps > 0 ? $", at most {tr.MaxSteps} steps" : "")}; " +
               $"{_o.Seeds} seed{(_o.Seeds > 1 ? "s" : "")} from {tr.Seed} (data order, dropout, head initialisation); " +
               $"{(_o.MaxExamples > 0 ? $"at most {_o.MaxExamples} examples per split" : "full splits")}; levels {string.Join(", ", levels.Select(l => l.ToString("P0", Inv)))}" +
               $"{(_o.Random ? "; random pruning at the same levels as a baseline" : "")}.";
    }

    public string MetricSentence => "each task's main metric on its dev split after the last epoch";

    public void AppendFindings(StringBuilder md, IReadOnlyList<EssentialCell> cells) { }

    public void Dispose() => _pretrained?.Dispose();
}
