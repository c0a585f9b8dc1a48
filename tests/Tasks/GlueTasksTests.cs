using NativeSparsity.Experiments.Tasks;
using NUnit.Framework;

namespace NativeSparsity.Tests.Tasks;

/// <summary>Each task's files in the exact layout the GLUE download script leaves (rows modelled on the real ones).</summary>
[TestFixture]
public class GlueTasksTests
{
    private string _root = "";

    [SetUp]
    public void SetUp()
    {
        _root = Path.Combine(Path.GetTempPath(), "nsparse-glue-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_root);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private string Write(string task, string split, params string[] lines)
    {
        string folder = Path.Combine(_root, task);
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, split + ".tsv");
        File.WriteAllText(path, string.Join("\n", lines) + "\n");
        return path;
    }

    private const string MnliTrainHeader =
        "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label";
    private const string MnliDevHeader =
        "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label";

    private static string MnliRow(int i, string s1, string s2, string gold, bool dev) =>
        $"{i}\t31193\t31193n\tgovernment\t( ( {s1} ) )\t( {s2} )\t(ROOT (S {s1}))\t(ROOT (S {s2}))\t{s1}\t{s2}\t{gold}" +
        (dev ? $"\t{gold}\t{gold}\tneutral\t{gold}" : "") + $"\t{gold}";

    [Test]
    public void CoLAHasNoHeader()
    {
        Write("CoLA", "train", "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.", "gj04\t0\t*\tThey drank the pub.");
        Write("CoLA", "dev", "gj04\t1\t\tThe sailors rode the breeze clear of the rocks.");
        var t = GlueTasks.Load(_root, "cola");
        Assert.That(t.Name, Is.EqualTo("CoLA"));
        Assert.That(t.Metrics, Is.EqualTo(new[] { TaskMetric.Matthews }));
        Assert.That(t.IsPair, Is.False);
        Assert.That(t.Train, Is.EqualTo(new[]
        {
            new TaskExample("Our friends won't buy this analysis, let alone the next one we propose.", null, 1),
            new TaskExample("They drank the pub.", null, 0),
        }));
        Assert.That(t.Dev.Single().Label, Is.EqualTo(1));
    }

    [Test]
    public void SST2HasSentenceAndLabel()
    {
        Write("SST-2", "train", "sentence\tlabel", "hide new secretions from the parental units \t0", "that loves its characters \t1");
        Write("SST-2", "dev", "sentence\tlabel", "it 's a charming and often affecting journey . \t1");
        var t = GlueTasks.Load(_root, "SST-2");
        Assert.That(t.Train.Select(e => e.Label), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(t.Train[0].TextA, Is.EqualTo("hide new secretions from the parental units "));
        Assert.That(t.MainMetric, Is.EqualTo(TaskMetric.Accuracy));
    }

    [Test]
    public void MRPCWithByteOrderMarkAndUnbalancedQuotes()
    {
        string header = "\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String";
        Write("MRPC", "train", header,
            "1\t702876\t702977\tAmrozi accused his brother , whom he called \" the witness \" , of deliberately distorting his evidence .\tReferring to him as only \" the witness \" , Amrozi accused his brother of deliberately distorting his evidence .",
            "0\t2108705\t2108831\tYucaipa owned Dominick 's before selling the chain to Safeway in 1998 for $ 2.5 billion .\tYucaipa bought Dominick 's in 1995 for $ 693 million and sold it to Safeway for $ 1.8 billion in 1998 .",
            "1\t1\t2\tHe said \"no.\tShe said \"yes.");
        Write("MRPC", "dev", header.TrimStart('\uFEFF'), "1\t1089874\t1089925\tPCCW 's chief operating officer , Mike Butcher , and Alex Arena , the chief financial officer , will report directly to Mr So .\tCurrent Chief Operating Officer Mike Butcher and Group Chief Financial Officer Alex Arena will report to So .");
        var t = GlueTasks.Load(_root, "MRPC");
        Assert.That(t.IsPair, Is.True);
        Assert.That(t.Metrics, Is.EqualTo(new[] { TaskMetric.F1, TaskMetric.Accuracy }));
        Assert.That(t.Train, Has.Count.EqualTo(3));
        Assert.That(t.Train[0].TextB, Does.StartWith("Referring to him as only \" the witness \""));
        Assert.That(t.Train[2], Is.EqualTo(new TaskExample("He said \"no.", "She said \"yes.", 1)), "quotes are text, not field delimiters");
        Assert.That(t.Train.Select(e => e.Label), Is.EqualTo(new[] { 1, 0, 1 }));
    }

    [Test]
    public void STSBScoreIsTheLastColumn()
    {
        const string header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore";
        Write("STS-B", "train", header, "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking off.\t5.000",
              "1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man is playing a large flute.\tA man is playing a flute.\t3.800");
        Write("STS-B", "dev", header, "0\tmain-captions\tMSRvid\t2012test\t0000\tnone\tnone\tA man with a hard hat is dancing.\tA man wearing a hard hat is dancing.\t5.000");
        var t = GlueTasks.Load(_root, "sts-b");
        Assert.That(t.IsRegression, Is.True);
        Assert.That(t.NumLabels, Is.EqualTo(1));
        Assert.That(t.Metrics, Is.EqualTo(new[] { TaskMetric.Pearson, TaskMetric.Spearman }));
        Assert.That(t.Train[1], Is.EqualTo(new TaskExample("A man is playing a large flute.", "A man is playing a flute.", 0, 3.8f)));
    }

    [Test]
    public void QQPSkipsMalformedRowsAndCountsThem()
    {
        const string header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate";
        Write("QQP", "train", header,
            "133273\t213221\t213222\tHow is the life of a math student? Could you describe your own experiences?\tWhich level of prepration is enough for the exam jlpt5?\t0",
            "402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your horniness?\t1",
            "363325\t493064\t493065\tWhat is the \"best\" way to learn",   // a question broken by a stray newline:
            "\t?\tHow can I learn?\t0",
            "1\t2\t3\tq1\tq2\tmaybe");
        Write("QQP", "dev", header, "201359\t303345\t303346\tWhy are African-Americans so beautiful?\tWhy are hispanics so beautiful?\t0");
        var t = GlueTasks.Load(_root, "QQP");
        Assert.That(t.Train.Select(e => e.Label), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(t.Splits.Single(s => s.Name == "train").SkippedRows, Is.EqualTo(3));
        Assert.That(t.Splits.Single(s => s.Name == "dev").SkippedRows, Is.EqualTo(0));
        Assert.That(t.Metrics, Is.EqualTo(new[] { TaskMetric.F1, TaskMetric.Accuracy }));
    }

    [Test]
    public void MNLIHasMatchedAndMismatchedDev()
    {
        Write("MNLI", "train", MnliTrainHeader,
            MnliRow(0, "Conceptually cream skimming has two basic dimensions.", "Product and geography are what make cream skimming work.", "neutral", false),
            MnliRow(1, "you know during the season", "You lose the things to the following level.", "entailment", false),
            MnliRow(2, "One of our number will carry out your instructions minutely.", "A member of my team will execute your orders.", "contradiction", false));
        Write("MNLI", "dev_matched", MnliDevHeader, MnliRow(0, "The new rights are nice enough", "Everyone really likes the newest benefits", "neutral", true));
        Write("MNLI", "dev_mismatched", MnliDevHeader,
            MnliRow(0, "Your contribution helped make it possible.", "Your contributions were of no help.", "contradiction", true),
            MnliRow(1, "The answer has nothing to do with their cause.", "Their cause is unrelated.", "entailment", true));
        var t = GlueTasks.Load(_root, "MNLI");
        Assert.That(t.LabelNames, Is.EqualTo(new[] { "contradiction", "entailment", "neutral" }));
        Assert.That(t.Train.Select(e => e.Label), Is.EqualTo(new[] { 2, 1, 0 }));
        Assert.That(t.Train[0].TextA, Is.EqualTo("Conceptually cream skimming has two basic dimensions."));
        Assert.That(t.EvaluationSplit, Is.EqualTo("dev_matched"));
        Assert.That(t.Dev.Single().Label, Is.EqualTo(2));
        Assert.That(t.Split("dev_mismatched").Select(e => e.Label), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(t.Split("dev_mismatched")[1].TextB, Is.EqualTo("Their cause is unrelated."));
    }

    [Test]
    public void QNLIRTEAndWNLI()
    {
        Write("QNLI", "train", "index\tquestion\tsentence\tlabel",
            "0\tWhen did the third Digimon series begin?\tUnlike the two seasons before it, the third series was a darker story.\tnot_entailment",
            "1\tWhat is the largest city?\tThe largest city is Paris.\tentailment");
        Write("QNLI", "dev", "index\tquestion\tsentence\tlabel", "0\tWhat came into force after the new constitution was herald?\tAs of that day, the new constitution heralding the Second Republic came into force.\tentailment");
        var q = GlueTasks.Load(_root, "QNLI");
        Assert.That(q.Train.Select(e => e.Label), Is.EqualTo(new[] { 1, 0 }));
        Assert.That(q.Train[0].TextA, Is.EqualTo("When did the third Digimon series begin?"));

        Write("RTE", "train", "index\tsentence1\tsentence2\tlabel", "0\tNo Weapons of Mass Destruction Found in Iraq Yet.\tWeapons of Mass Destruction Found in Iraq.\tnot_entailment");
        Write("RTE", "dev", "index\tsentence1\tsentence2\tlabel", "0\tDana Reeve died of lung cancer.\tChristopher Reeve had an accident.\tnot_entailment",
              "1\tYet, we now are discovering that antibiotics are losing their effectiveness.\tBacteria is winning the war against antibiotics.\tentailment");
        var r = GlueTasks.Load(_root, "RTE");
        Assert.That(r.Dev.Select(e => e.Label), Is.EqualTo(new[] { 1, 0 }));
        Assert.That(r.LabelNames, Is.EqualTo(new[] { "entailment", "not_entailment" }));

        Write("WNLI", "train", "index\tsentence1\tsentence2\tlabel", "0\tI stuck a pin through a carrot. When I pulled the pin out, it had a hole.\tThe carrot had a hole.\t1");
        Write("WNLI", "dev", "index\tsentence1\tsentence2\tlabel", "0\tThe drain is clogged with hair. It has to be cleaned.\tThe hair has to be cleaned.\t0");
        var w = GlueTasks.Load(_root, "WNLI");
        Assert.That(w.Train.Single(), Is.EqualTo(new TaskExample("I stuck a pin through a carrot. When I pulled the pin out, it had a hole.", "The carrot had a hole.", 1)));
        Assert.That(w.Dev.Single().Label, Is.EqualTo(0));
    }

    [Test]
    public void MalformedLinesNameTheFileLineAndExpectation()
    {
        string path = Write("SST-2", "train", "sentence\tlabel", "good film\t1", "a line without its label", "bad film\t0");
        Write("SST-2", "dev", "sentence\tlabel", "fine\t1");
        var e = Assert.Throws<GlueFormatException>(() => GlueTasks.Load(_root, "SST-2"))!;
        Assert.That(e.FilePath, Is.EqualTo(path));
        Assert.That(e.LineNumber, Is.EqualTo(3));
        Assert.That(e.Message, Does.Contain("line 3").And.Contain("1 tab-separated columns, expected 2"));

        Write("SST-2", "train", "sentence\tlabel", "good film\t1", "bad film\tnegative");
        e = Assert.Throws<GlueFormatException>(() => GlueTasks.Load(_root, "SST-2"))!;
        Assert.That(e.Message, Does.Contain("line 3").And.Contain("'negative' is not one of 0, 1"));

        Write("SST-2", "train", "text\tlabel", "good film\t1");
        e = Assert.Throws<GlueFormatException>(() => GlueTasks.Load(_root, "SST-2"))!;
        Assert.That(e.Message, Does.Contain("line 1").And.Contain("no 'sentence' column"));

        Write("STS-B", "train", "index\tsentence1\tsentence2\tscore", "0\ta\tb\tfive");
        Write("STS-B", "dev", "index\tsentence1\tsentence2\tscore", "0\ta\tb\t1.0");
        e = Assert.Throws<GlueFormatException>(() => GlueTasks.Load(_root, "STS-B"))!;
        Assert.That(e.Message, Does.Contain("line 2").And.Contain("'five' is not a number"));

        Write("CoLA", "train", "gj04\t1\tOur friends won't buy this analysis.");
        e = Assert.Throws<GlueFormatException>(() => GlueTasks.Load(_root, "CoLA"))!;
        Assert.That(e.Message, Does.Contain("line 1").And.Contain("3 tab-separated columns, expected 4"));

        Assert.Throws<DirectoryNotFoundException>(() => GlueTasks.Load(_root, "RTE"));
        Write("RTE", "train", "index\tsentence1\tsentence2\tlabel");
        Assert.That(Assert.Throws<FileNotFoundException>(() => GlueTasks.Load(_root, "RTE"))!.Message, Does.Contain("dev"));
        Assert.Throws<ArgumentException>(() => GlueTasks.Load(_root, "SQuAD"));
    }

    [Test]
    public void MaxExamplesKeepsTheFirstRows()
    {
        Write("SST-2", "train", "sentence\tlabel", "a\t1", "b\t0", "c\t1");
        Write("SST-2", "dev", "sentence\tlabel", "d\t1");
        var t = GlueTasks.Load(_root, "SST-2", maxExamplesPerSplit: 2);
        Assert.That(t.Train.Select(e => e.TextA), Is.EqualTo(new[] { "a", "b" }));
    }
}

[TestFixture]
public class TaskCatalogTests
{
    [Test]
    public void ResolvesWordNetAndGlueNames()
    {
        var t = TaskCatalog.Load("Antonym", maxExamplesPerSplit: 20);
        Assert.That(t.Name, Is.EqualTo("antonym"));
        Assert.That(t.Train, Has.Count.EqualTo(20));
        Assert.That(TaskCatalog.IsGlue("sst2"), Is.True);
        Assert.That(Assert.Throws<ArgumentException>(() => TaskCatalog.Load("SST-2"))!.Message, Does.Contain("GLUE data folder"));
        Assert.That(Assert.Throws<ArgumentException>(() => TaskCatalog.Load("squad"))!.Message, Does.Contain("supersense"));
    }
}
