using NativeSparsity.Models.Data.Corpus;
using NativeSparsity.Models.Data.WordNet;
using NUnit.Framework;

namespace NativeSparsity.Tests.Data;

[TestFixture]
public class WordNetTests
{
    // Real lines of WordNet 3.0's data files, verbatim (trailing two spaces included).
    private const string EntityLine =
        "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 ~ 00002137 n 0000 ~ 04424418 n 0000 | that which is perceived or known or inferred to have its own distinct existence (living or nonliving)  ";
    private const string DogLine =
        "02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 023 @ 02083346 n 0000 @ 01317541 n 0000 #m 02083863 n 0000 #m 07994941 n 0000 ~ 01322604 n 0000 ~ 02084732 n 0000 ~ 02084861 n 0000 ~ 02085272 n 0000 ~ 02085374 n 0000 ~ 02087122 n 0000 ~ 02103406 n 0000 ~ 02110341 n 0000 ~ 02110806 n 0000 ~ 02110958 n 0000 ~ 02111129 n 0000 ~ 02111277 n 0000 ~ 02111500 n 0000 ~ 02111626 n 0000 ~ 02112497 n 0000 ~ 02112826 n 0000 ~ 02113335 n 0000 ~ 02113978 n 0000 %p 02158846 n 0000 | a member of the genus Canis (probably descended from the common wolf) that has been domesticated by man since prehistoric times; occurs in many breeds; \"the dog barked all night\"  ";
    private const string BreatheLine =
        "00001740 29 v 04 breathe 0 take_a_breath 0 respire 0 suspire 3 021 * 00005041 v 0000 * 00004227 v 0000 + 03110323 a 0301 + 00831191 n 0303 + 04080833 n 0301 + 04250850 n 0105 + 00831191 n 0101 ^ 00004227 v 0103 ^ 00005041 v 0103 $ 00002325 v 0000 $ 00002573 v 0000 ~ 00002573 v 0000 ~ 00002724 v 0000 ~ 00002942 v 0000 ~ 00003826 v 0000 ~ 00004032 v 0000 ~ 00004227 v 0000 ~ 00005041 v 0000 ~ 00006697 v 0000 ~ 00007328 v 0000 ~ 00017031 v 0000 02 + 02 00 + 08 00 | draw air into, and expel out of, the lungs; \"I can breathe better when the air is clean\"; \"The patient is respiring\"  ";
    private const string GaloreLine =
        "00014358 00 s 02 abounding 0 galore(ip) 0 001 & 00013887 a 0000 | existing in abundance; \"abounding confidence\"; \"whiskey galore\"  ";
    private const string ReductiveLine =
        "00050446 00 s 01 reductive 0 002 & 00050083 a 0000 + 00429060 v 0101 | characterized by or causing diminution or curtailment; \"their views of life were reductive and depreciatory\" - R.H.Rovere  ";
    private const string ACappellaLine =
        "00001740 02 r 01 a_cappella 0 000 | without musical accompaniment; \"they performed a cappella\"  ";

    [Test]
    public void ParsesANounLine()
    {
        var s = WndbParser.ParseDataLine(EntityLine);
        Assert.That(s.Offset, Is.EqualTo(1740));
        Assert.That(s.LexFileNumber, Is.EqualTo(3));
        Assert.That(s.LexFileName, Is.EqualTo("noun.Tops"));
        Assert.That(s.SsType, Is.EqualTo('n'));
        Assert.That(s.Words.Select(w => w.Lemma), Is.EqualTo(new[] { "entity" }));
        Assert.That(s.Pointers, Has.Count.EqualTo(3));
        Assert.That(s.Pointers[2], Is.EqualTo(new WordNetPointer("~", 4424418, 'n', 0, 0)));
        Assert.That(s.Definition, Is.EqualTo("that which is perceived or known or inferred to have its own distinct existence (living or nonliving)"));
        Assert.That(s.Examples, Is.Empty);
        Assert.That(s.Frames, Is.Empty);
    }

    [Test]
    public void ParsesWordsPointersAndGlossParts()
    {
        var s = WndbParser.ParseDataLine(DogLine);
        Assert.That(s.Words.Select(w => w.Text), Is.EqualTo(new[] { "dog", "domestic dog", "Canis familiaris" }));
        Assert.That(s.Pointers, Has.Count.EqualTo(23));
        Assert.That(s.Pointers[0], Is.EqualTo(new WordNetPointer("@", 2083346, 'n', 0, 0)));
        Assert.That(s.Pointers[2].Symbol, Is.EqualTo("#m"));
        Assert.That(s.Pointers[22], Is.EqualTo(new WordNetPointer("%p", 2158846, 'n', 0, 0)));
        Assert.That(s.Definition, Is.EqualTo("a member of the genus Canis (probably descended from the common wolf) that has been domesticated by man since prehistoric times; occurs in many breeds"));
        Assert.That(s.Examples, Is.EqualTo(new[] { "the dog barked all night" }));
        Assert.That(WordNetCorpus.DocumentText(s), Is.EqualTo(
            "dog, domestic dog, Canis familiaris: a member of the genus Canis (probably descended from the common wolf) that has been domesticated by man since prehistoric times; occurs in many breeds. The dog barked all night."));
    }

    [Test]
    public void ParsesVerbFramesLexIdsAndLexicalPointers()
    {
        var s = WndbParser.ParseDataLine(BreatheLine);
        Assert.That(s.LexFileName, Is.EqualTo("verb.body"));
        Assert.That(s.Words[3], Is.EqualTo(new WordNetWord("suspire", 3, null)));
        Assert.That(s.Pointers, Has.Count.EqualTo(21));
        Assert.That(s.Pointers[2], Is.EqualTo(new WordNetPointer("+", 3110323, 'a', 3, 1)));
        Assert.That(s.Pointers[2].IsSemantic, Is.False);
        Assert.That(s.Frames, Is.EqualTo(new[] { new WordNetFrame(2, 0), new WordNetFrame(8, 0) }));
        Assert.That(s.Examples, Is.EqualTo(new[] { "I can breathe better when the air is clean", "The patient is respiring" }));
    }

    [Test]
    public void ParsesAdjectiveMarkersSatellitesAndAttributions()
    {
        var s = WndbParser.ParseDataLine(GaloreLine);
        Assert.That(s.SsType, Is.EqualTo('s'));
        Assert.That(s.Pos, Is.EqualTo(WordNetPos.Adjective));
        Assert.That(s.Words[1], Is.EqualTo(new WordNetWord("galore", 0, "ip")));
        Assert.That(s.Examples, Is.EqualTo(new[] { "abounding confidence", "whiskey galore" }));
        var r = WndbParser.ParseDataLine(ReductiveLine);
        Assert.That(r.Examples, Is.EqualTo(new[] { "their views of life were reductive and depreciatory" }));
        Assert.That(r.Definition, Is.EqualTo("characterized by or causing diminution or curtailment"));
        var a = WndbParser.ParseDataLine(ACappellaLine);
        Assert.That(a.Pos, Is.EqualTo(WordNetPos.Adverb));
        Assert.That(a.Pointers, Is.Empty);
        Assert.That(a.Words[0].Text, Is.EqualTo("a cappella"));
    }

    [Test]
    public void MalformedLinesNameTheSourceAndLine()
    {
        string[] bad =
        {
            "0000174 03 n 01 entity 0 000 | x",                 // short offset
            "00001740 45 n 01 entity 0 000 | x",                // lex_filenum out of range
            "00001740 03 q 01 entity 0 000 | x",                // ss_type
            "00001740 03 n 02 entity 0 000 | x",                // fewer words than w_cnt
            "00001740 03 n 01 entity 0 001 ~ 00001930 n | x",   // short pointer
            "00001740 03 n 01 entity 0 000 extra | x",          // trailing field
            "00001740 03 n 01 entity 0 000 x",                  // no gloss bar
        };
        foreach (string line in bad)
        {
            var e = Assert.Throws<WordNetFormatException>(() => WndbParser.ParseDataLine(line, "data.test", 42), line)!;
            Assert.That(e.Message, Does.Contain("data.test").And.Contain("line 42"));
        }
    }

    [Test]
    public void EmbeddedCopyHasWordNet30Counts()
    {
        var expected = new Dictionary<WordNetPos, int>
        {
            [WordNetPos.Noun] = 82115, [WordNetPos.Verb] = 13767, [WordNetPos.Adjective] = 18156, [WordNetPos.Adverb] = 3621,
        };
        long words = 0;
        var lexFiles = new HashSet<int>();
        foreach (var (pos, count) in expected)
        {
            int n = 0;
            foreach (var s in WordNetSource.Embedded.Synsets(pos))
            {
                n++;
                lexFiles.Add(s.LexFileNumber);
                Assert.That(s.Pos, Is.EqualTo(pos));
                words += s.Gloss.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
            }
            Assert.That(n, Is.EqualTo(count), pos.ToString());
        }
        Assert.That(lexFiles, Has.Count.EqualTo(45), "every lexicographer file is used");
        Assert.That(words, Is.InRange(1_400_000, 1_500_000), "gloss words");
        Assert.That(WordNetSource.LicenseText(), Does.Contain("WordNet 3.0 Copyright 2006 by Princeton University"));
    }

    [Test]
    public void EmbeddedOffsetsAreByteOffsetsAndLinesAreVerbatim()
    {
        // The embedded files are byte-identical to WordNet's, so each synset's offset is its line's byte position.
        long position = 0;
        int checkedLines = 0;
        foreach (string line in WordNetSource.Embedded.Lines(WordNetPos.Adverb))
        {
            if (!WndbParser.IsHeaderLine(line))
            {
                Assert.That(long.Parse(line[..8]), Is.EqualTo(position));
                checkedLines++;
            }
            position += line.Length + 1;
        }
        Assert.That(checkedLines, Is.EqualTo(3621));
        Assert.That(WordNetSource.Embedded.Lines(WordNetPos.Adverb).Contains(ACappellaLine));
        Assert.That(WordNetSource.Embedded.Lines(WordNetPos.Noun).Contains(DogLine));
    }

    [Test]
    public void ReadsAFolderInstall()
    {
        string dir = Path.Combine(Path.GetTempPath(), "nsparse-wn-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "data.adv"), "  1 This software and database is being provided to you, the LICENSEE, by  \n" + ACappellaLine + "\n");
            var source = WordNetSource.Folder(dir);
            var all = source.Synsets(WordNetPos.Adverb).ToList();
            Assert.That(all, Has.Count.EqualTo(1));
            Assert.That(all[0].Examples, Is.EqualTo(new[] { "they performed a cappella" }));
            var e = Assert.Throws<FileNotFoundException>(() => source.Synsets(WordNetPos.Noun).ToList())!;
            Assert.That(e.Message, Does.Contain("data.noun"));
            if (Directory.Exists("/usr/share/wordnet") && File.Exists("/usr/share/wordnet/data.verb"))
                Assert.That(WordNetSource.Folder("/usr/share/wordnet").Synsets(WordNetPos.Verb).Count(), Is.EqualTo(13767));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Test]
    public void LexNamesHas45Files()
    {
        Assert.That(LexNames.All, Has.Count.EqualTo(45));
        Assert.That(LexNames.Name(0), Is.EqualTo("adj.all"));
        Assert.That(LexNames.Name(18), Is.EqualTo("noun.person"));
        Assert.That(LexNames.Name(44), Is.EqualTo("adj.ppl"));
        Assert.That(LexNames.Number("verb.weather"), Is.EqualTo(43));
    }
}
