using NativeSparsity.Experiments.Tasks;
using NativeSparsity.Models.Data.WordNet;
using NUnit.Framework;

namespace NativeSparsity.Tests.Tasks;

[TestFixture]
public class WordNetTasksTests
{
    private static readonly WordNetTaskOptions Full = new();
    private static readonly Dictionary<string, ClassificationTask> Tasks = new();

    private static ClassificationTask Get(string name)
    {
        lock (Tasks)
        {
            if (!Tasks.TryGetValue(name, out var t)) Tasks[name] = t = WordNetTasks.Build(name, Full);
            return t;
        }
    }

    private static IEnumerable<string> Names => WordNetTasks.Names;

    [TestCaseSource(nameof(Names))]
    public void SplitsAreDisjointBySynsetAndFollowTheHash(string name)
    {
        var task = Get(name);
        Assert.That(task.Splits.Select(s => s.Name), Is.EqualTo(new[] { "train", "dev", "test" }));
        var owners = task.Splits.Select(s => s.Examples.Select(e => e.SourceId!).ToHashSet()).ToArray();
        for (int i = 0; i < 3; i++)
        {
            Assert.That(task.Splits[i].Examples, Is.Not.Empty, $"{name} {task.Splits[i].Name}");
            for (int j = i + 1; j < 3; j++) Assert.That(owners[i].Overlaps(owners[j]), Is.False, $"{name}: splits {i} and {j} share a synset");
            foreach (string id in owners[i].Take(200))
            {
                var pos = WordNetPosExtensions.FromLetter(id[0]);
                Assert.That(WordNetTasks.SplitOf(pos, long.Parse(id[1..]), Full), Is.EqualTo(i), id);
            }
        }
        // Roughly 80/10/10 by synsets.
        double trainShare = (double)owners[0].Count / owners.Sum(o => o.Count);
        Assert.That(trainShare, Is.InRange(0.75, 0.85), name);
    }

    [TestCase("hypernym")]
    [TestCase("antonym")]
    [TestCase("sense")]
    public void PairTasksAreBalanced(string name)
    {
        var task = Get(name);
        Assert.That(task.IsPair, Is.True);
        foreach (var split in task.Splits)
        {
            var st = task.Statistics(split.Name);
            Assert.That(st.LabelCounts[0], Is.EqualTo(st.LabelCounts[1]), $"{name} {split.Name}");
            Assert.That(st.MajorityBaseline, Is.EqualTo(0.5), $"{name} {split.Name}");
            Assert.That(split.Examples.All(e => e.TextA.Length > 0 && e.TextB!.Length > 0), Is.True);
        }
    }

    [Test]
    public void SupersenseUsesDefinitionsAndLexicographerFiles()
    {
        var task = Get("supersense");
        Assert.That(task.NumLabels, Is.EqualTo(45));
        Assert.That(task.IsPair, Is.False);
        var st = task.Statistics("train");
        Assert.That(st.PresentLabels.Count(), Is.InRange(40, 45));
        Assert.That(task.LabelNames[st.MajorityLabel], Is.EqualTo("adj.all"), "WordNet 3.0 has more adj.all synsets than noun.artifact ones");
        int total = task.Splits.Sum(s => s.Examples.Count);
        Assert.That(total, Is.InRange(117_000, 117_659), "one example per synset with a definition");
        var dog = task.Splits.SelectMany(s => s.Examples).Single(e => e.SourceId == "n02084071");
        Assert.That(dog.TextA, Does.StartWith("a member of the genus Canis"));
        Assert.That(dog.TextA, Does.Not.Contain("domestic dog"));
        Assert.That(task.LabelNames[dog.Label], Is.EqualTo("noun.animal"));
    }

    [Test]
    public void PairsHaveTheRelationTheirLabelSays()
    {
        var byId = WordNetIndex.Of(null).All.ToDictionary(WordNetTasks.SourceIdOf);
        var hypernym = Get("hypernym");
        foreach (var e in hypernym.Train.Take(300))
        {
            var x = byId[e.SourceId!];
            var hyperDefs = x.Pointers.Where(p => p.Symbol is "@" or "@i").Select(p => byId[Id(p)].Definition).ToList();
            Assert.That(hyperDefs.Contains(e.TextB!), Is.EqualTo(e.Label == 1), $"{e.SourceId}: {e.TextB}");
            Assert.That(e.TextA, Is.EqualTo(x.Definition));
        }
        var antonym = Get("antonym");
        foreach (var e in antonym.Train.Take(300))
        {
            var x = byId[e.SourceId!];
            var related = x.Pointers.Where(p => p.Symbol == (e.Label == 1 ? "!" : "&")).Select(p => byId[Id(p)].Definition);
            Assert.That(related, Does.Contain(e.TextB), $"{e.SourceId}: {e.TextB}");
        }
        var sense = Get("sense");
        foreach (var e in sense.Train.Take(300))
        {
            var s = byId[e.SourceId!];
            Assert.That(e.TextB == s.Definition, Is.EqualTo(e.Label == 1), e.SourceId);
            string word = e.TextA[..e.TextA.IndexOf(": ", StringComparison.Ordinal)];
            Assert.That(s.Words.Select(w => w.Text), Does.Contain(word));
            Assert.That(WordNetTasks.ContainsWord(e.TextA[(word.Length + 2)..], word.ToLowerInvariant()), Is.True, e.TextA);
        }
    }

    private static string Id(WordNetPointer p) =>
        (p.TargetPos == 's' ? 'a' : p.TargetPos) + p.TargetOffset.ToString("D8", System.Globalization.CultureInfo.InvariantCulture);

    [Test]
    public void BuildIsDeterministicAndTheSeedMatters()
    {
        foreach (string name in WordNetTasks.Names)
        {
            var again = WordNetTasks.Build(name, Full);
            for (int i = 0; i < 3; i++) Assert.That(again.Splits[i].Examples.SequenceEqual(Get(name).Splits[i].Examples), Is.True, $"{name} {i}");
        }
        var capped = Full with { MaxExamplesPerSplit = 200 };
        var small = WordNetTasks.Build("antonym", capped);
        Assert.That(small.Splits.Select(s => s.Examples.Count), Is.EqualTo(new[] { 200, 200, 200 }));
        Assert.That(small.Statistics("dev").LabelCounts, Is.EqualTo(new[] { 100, 100 }));
        var smallSupersense = WordNetTasks.Build("supersense", capped);
        Assert.That(smallSupersense.Train, Is.EqualTo(Get("supersense").Train.Take(200)), "the cap keeps a prefix of the seeded order");
        var otherSeed = WordNetTasks.Build("antonym", Full with { Seed = Full.Seed + 1 });
        Assert.That(otherSeed.Train, Is.Not.EqualTo(Get("antonym").Train));
        Assert.That(otherSeed.Train.Count + otherSeed.Split("dev").Count + otherSeed.Split("test").Count,
                    Is.InRange(0.95 * Get("antonym").Splits.Sum(s => s.Examples.Count), 1.05 * Get("antonym").Splits.Sum(s => s.Examples.Count)));
    }

    [Test]
    public void ContainsWordMatchesWholeWordsAndSimpleInflections()
    {
        Assert.That(WordNetTasks.ContainsWord("The dog barked all night", "bark"), Is.True);
        Assert.That(WordNetTasks.ContainsWord("the dogs", "dog"), Is.True);
        Assert.That(WordNetTasks.ContainsWord("a hotdog stand", "dog"), Is.False);
        Assert.That(WordNetTasks.ContainsWord("dogma", "dog"), Is.False);
        Assert.That(WordNetTasks.ContainsWord("he took a deep breath", "take a breath"), Is.False);
        Assert.That(WordNetTasks.ContainsWord("they performed a cappella", "a cappella"), Is.True);
    }

    [Test]
    public void BadOptionsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => WordNetTasks.Build("supersense", Full with { TrainFraction = 0.95, DevFraction = 0.1 }));
        Assert.Throws<ArgumentException>(() => WordNetTasks.Build("synonym"));
    }
}
