using NativeSparsity.Models.Text;
using NUnit.Framework;
using SharpToken;

namespace NativeSparsity.Tests.Data;

[TestFixture]
public class TokenizerTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Path.Combine(Path.GetTempPath(), "nsparse-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static readonly string[] Corpus =
    {
        "The quick brown fox jumps over the lazy dog.",
        "A dog is a domesticated descendant of the wolf; dogs bark.",
        "Entity: that which is perceived or known or inferred to have its own distinct existence.",
        "the the the dog dog fox",
    };

    [Test]
    public void SharpTokenEncodesCl100kOffline()
    {
        var enc = GptEncoding.GetEncoding("cl100k_base");
        Assert.That(enc.Encode("hello world"), Is.EqualTo(new[] { 15339, 1917 }));
    }

    [Test]
    public void CompactVocabularyKeepsTheMostFrequentIdsInOrder()
    {
        var counts = new long[100];
        counts[10] = 5; counts[20] = 7; counts[30] = 5; counts[40] = 1; counts[50] = 9;
        var tok = CompactBpeTokenizer.FromCounts(counts, vocabSize: 5 + 4);
        Assert.That(tok.VocabSize, Is.EqualTo(9));
        // 50 (9), 20 (7), then the tie 10/30 (5) broken by the lower id; 40 (1) drops out.
        Assert.That(Enumerable.Range(5, 4).Select(tok.BaseId), Is.EqualTo(new[] { 50, 20, 10, 30 }));
        Assert.That(tok.Counts, Is.EqualTo(new long[] { 9, 7, 5, 5 }));

        var few = CompactBpeTokenizer.FromCounts(counts, vocabSize: 8192);
        Assert.That(few.VocabSize, Is.EqualTo(5 + 5), "only ids that occur are kept");
        Assert.Throws<ArgumentOutOfRangeException>(() => CompactBpeTokenizer.FromCounts(counts, vocabSize: 5));
    }

    [Test]
    public void CompactBpeRoundTripsCorpusText()
    {
        var tok = CompactBpeTokenizer.Build(Corpus);
        Assert.That(tok.Special, Is.EqualTo(new SpecialTokenIds(0, 1, 2, 3, 4)));
        var enc = GptEncoding.GetEncoding("cl100k_base");
        int distinct = Corpus.SelectMany(d => enc.Encode(d)).Distinct().Count();
        Assert.That(tok.VocabSize, Is.EqualTo(5 + distinct));
        foreach (string doc in Corpus)
        {
            int[] ids = tok.Encode(doc);
            Assert.That(ids, Has.None.EqualTo(tok.Special.Unk), doc);
            Assert.That(ids, Has.All.InRange(5, tok.VocabSize - 1));
            Assert.That(tok.Decode(ids), Is.EqualTo(doc));
        }
        // the most frequent base token gets id 5
        var counts = CompactBpeTokenizer.CountBaseTokens(Corpus);
        int top = Enumerable.Range(0, counts.Length).OrderByDescending(i => counts[i]).ThenBy(i => i).First();
        Assert.That(tok.BaseId(5), Is.EqualTo(top));
    }

    [Test]
    public void UnknownTokensMapToUnkAndSpecialsAreRecognised()
    {
        var tok = CompactBpeTokenizer.Build(Corpus);
        int[] ids = tok.Encode("the zebra xylophone");
        Assert.That(ids, Does.Contain(tok.Special.Unk));
        Assert.That(ids[0], Is.EqualTo(tok.Encode("the")[0]));
        Assert.That(tok.Decode(ids), Does.Contain("[UNK]"));

        int[] masked = tok.Encode("the quick [MASK] fox[SEP]");
        var expected = tok.Encode("the quick").Append(tok.Special.Mask).Concat(tok.Encode(" fox")).Append(tok.Special.Sep).ToArray();
        Assert.That(masked, Is.EqualTo(expected), "the space before [MASK] goes with the masked word");
        Assert.That(tok.Decode(masked, skipSpecial: true), Is.EqualTo("the quick fox"));
        Assert.That(tok.TokenText(tok.Special.Mask), Is.EqualTo("[MASK]"));
        Assert.That(tok.Encode("[PAD][CLS][SEP][MASK][UNK]"), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
        Assert.That(tok.Encode("a [MASKED] b"), Has.None.EqualTo(tok.Special.Mask));
    }

    [Test]
    public void CompactBpeSavesAndLoads()
    {
        var tok = CompactBpeTokenizer.Build(Corpus, vocabSize: 20);
        tok.Save(_dir);
        var back = Tokenizers.Load(_dir);
        Assert.That(back, Is.TypeOf<CompactBpeTokenizer>());
        Assert.That(back.VocabSize, Is.EqualTo(20));
        Assert.That(back.Fingerprint, Is.EqualTo(tok.Fingerprint));
        foreach (string doc in Corpus) Assert.That(back.Encode(doc), Is.EqualTo(tok.Encode(doc)));
        Assert.That(CompactBpeTokenizer.Build(Corpus, vocabSize: 21).Fingerprint, Is.Not.EqualTo(tok.Fingerprint));

        File.WriteAllText(Path.Combine(_dir, CompactBpeTokenizer.FileName), "{\"format\":\"something else\"}");
        var e = Assert.Throws<InvalidDataException>(() => Tokenizers.Load(_dir))!;
        Assert.That(e.Message, Does.Contain(CompactBpeTokenizer.FileName));
    }

    private static readonly string[] SmallVocab =
    {
        "[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "quick", "brown", "fox", "##es",
        "jump", "##ed", ".", ",", "over", "dog", "cafe",
    };

    private WordPieceTokenizer WriteSmallVocab()
    {
        File.WriteAllText(Path.Combine(_dir, "vocab.txt"), string.Join("\n", SmallVocab) + "\n");
        return (WordPieceTokenizer)Tokenizers.Load(_dir);
    }

    [Test]
    public void WordPieceIdsAreLineNumbersWithLowercasing()
    {
        var tok = WriteSmallVocab();
        Assert.That(tok.VocabSize, Is.EqualTo(SmallVocab.Length));
        Assert.That(tok.Special, Is.EqualTo(new SpecialTokenIds(Pad: 0, Cls: 3, Sep: 4, Mask: 5, Unk: 2)));
        int Id(string s) => Array.IndexOf(SmallVocab, s);
        Assert.That(tok.Encode("The QUICK foxes jumped."),
            Is.EqualTo(new[] { Id("the"), Id("quick"), Id("fox"), Id("##es"), Id("jump"), Id("##ed"), Id(".") }));
        Assert.That(tok.Encode("Café"), Is.EqualTo(new[] { Id("cafe") }), "accents stripped as in bert-base-uncased");
        Assert.That(tok.Encode("CAFE\u0301 Cafè"), Is.EqualTo(new[] { Id("cafe"), Id("cafe") }), "combining marks dropped too");
        Assert.That(tok.Decode(tok.Encode("the quick foxes jumped over the dog.")), Is.EqualTo("the quick foxes jumped over the dog ."));
    }

    [Test]
    public void WordPieceUnknownsAndSpecials()
    {
        var tok = WriteSmallVocab();
        int[] ids = tok.Encode("the zebra [MASK] fox");
        Assert.That(ids, Is.EqualTo(new[] { 6, 2, 5, 9 }));
        Assert.That(tok.Decode(ids, skipSpecial: true), Is.EqualTo("the fox"));
        Assert.That(tok.TokenText(5), Is.EqualTo("[MASK]"));
        int[] longIds = tok.Encode(string.Concat(Enumerable.Repeat("the foxes, ", 3000)));
        Assert.That(longIds, Has.Length.EqualTo(3000 * 4), "long texts are not truncated at 512 tokens");
        Assert.That(longIds[^4..], Is.EqualTo(new[] { 6, 9, 10, 14 }));
    }

    [Test]
    public void WordPieceSavesAndLoadsAndRequiresSpecials()
    {
        var tok = WriteSmallVocab();
        string other = Path.Combine(_dir, "copy");
        tok.Save(other);
        var back = Tokenizers.Load(other);
        Assert.That(back.Fingerprint, Is.EqualTo(tok.Fingerprint));
        Assert.That(back.Encode("the brown fox"), Is.EqualTo(tok.Encode("the brown fox")));

        File.WriteAllText(Path.Combine(_dir, "vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n");
        var e = Assert.Throws<InvalidDataException>(() => Tokenizers.Load(_dir))!;
        Assert.That(e.Message, Does.Contain("[MASK]"));
    }
}
