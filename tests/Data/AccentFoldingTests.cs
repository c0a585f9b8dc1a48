using System.Globalization;
using System.Text;
using NativeSparsity.Models.Text;
using NUnit.Framework;

namespace NativeSparsity.Tests.Data;

public class AccentFoldingTests
{
    // The reference: ICU's NFD (the test process runs with ICU), then every non-spacing mark dropped, as BERT's uncased tokenizer does.
    private static string NfdWithoutMarks(string text)
    {
        var sb = new StringBuilder();
        foreach (var rune in text.Normalize(NormalizationForm.FormD).EnumerateRunes())
            if (Rune.GetUnicodeCategory(rune) != UnicodeCategory.NonSpacingMark) sb.Append(rune.ToString());
        return sb.ToString();
    }

    [Test]
    public void EveryCodePointFoldsAsIcusNfdWithoutMarks()
    {
        var wrong = new List<string>();
        for (int cp = 0; cp <= 0x10FFFF; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF) continue;
            string s = char.ConvertFromUtf32(cp);
            if (Rune.GetUnicodeCategory(new Rune(cp)) == UnicodeCategory.OtherNotAssigned) continue;
            string expected = NfdWithoutMarks(s), actual = AccentFolding.Strip(s);
            if (expected != actual) wrong.Add($"U+{cp:X4}: expected {string.Join(" ", expected.EnumerateRunes().Select(r => $"U+{r.Value:X4}"))}, got {string.Join(" ", actual.EnumerateRunes().Select(r => $"U+{r.Value:X4}"))}");
        }
        Assert.That(wrong, Is.Empty, string.Join("\n", wrong.Take(20)));
    }

    [Test]
    public void FoldsWordsAndLeavesAsciiAlone()
    {
        Assert.That(AccentFolding.Strip("Zoë's façade in São Paulo"), Is.EqualTo("Zoe's facade in Sao Paulo"));
        Assert.That(AccentFolding.Strip("です"), Is.EqualTo("てす"));
        Assert.That(AccentFolding.Strip("한"), Is.EqualTo("\u1112\u1161\u11AB"));
        const string ascii = "plain ASCII, 123!";
        Assert.That(AccentFolding.Strip(ascii), Is.SameAs(ascii));
    }

    [Test]
    public void VocabularyLinesSplitOnLfAndCrlfAlike()
    {
        Assert.That(WordPieceTokenizer.ParseVocabulary("[PAD]\r\n[UNK]\r\nhello\r\n"), Is.EqualTo(new[] { "[PAD]", "[UNK]", "hello" }));
        Assert.That(WordPieceTokenizer.ParseVocabulary("[PAD]\n[UNK]\nhello"), Is.EqualTo(new[] { "[PAD]", "[UNK]", "hello" }));
    }
}
