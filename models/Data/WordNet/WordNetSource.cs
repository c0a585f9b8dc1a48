using System.IO.Compression;
using System.Text;

namespace NativeSparsity.Models.Data.WordNet;

/// <summary>
/// Where WordNet's data files come from: the copy embedded in this assembly (Brotli-compressed,
/// byte-identical to WordNet 3.0's files) or a folder holding a WordNet install, e.g.
/// /usr/share/wordnet from Debian's wordnet-base, with plain data.noun ... files (or data.noun.br).
/// Both are read by the same wndb(5) parser.
/// </summary>
public sealed class WordNetSource
{
    private const string ResourcePrefix = "wordnet/";
    private readonly string? _folder;

    private WordNetSource(string? folder) => _folder = folder;

    public static WordNetSource Embedded { get; } = new(null);

    public static WordNetSource Folder(string folder)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"WordNet folder '{folder}' does not exist (Debian's wordnet-base installs /usr/share/wordnet)");
        return new WordNetSource(folder);
    }

    public override string ToString() => _folder ?? "embedded WordNet 3.0";

    public static IReadOnlyList<WordNetPos> AllPos { get; } = new[] { WordNetPos.Noun, WordNetPos.Verb, WordNetPos.Adjective, WordNetPos.Adverb };

    /// <summary>The WordNet license notice that must accompany the data.</summary>
    public static string LicenseText()
    {
        using var stream = OpenResource("LICENSE-WordNet.txt");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    /// <summary>The raw lines of one data file, license header included.</summary>
    public IEnumerable<string> Lines(WordNetPos pos)
    {
        using var stream = Open(pos, out _);
        // WordNet 3.0's files are ASCII; Latin-1 maps any byte of another install to a char without failing.
        using var reader = new StreamReader(stream, Encoding.Latin1);
        while (reader.ReadLine() is { } line) yield return line;
    }

    /// <summary>The synsets of one data file, in file order.</summary>
    public IEnumerable<WordNetSynset> Synsets(WordNetPos pos)
    {
        string name = Describe(pos);
        long lineNumber = 0;
        foreach (string line in Lines(pos))
        {
            lineNumber++;
            if (WndbParser.IsHeaderLine(line)) continue;
            yield return WndbParser.ParseDataLine(line, name, lineNumber);
        }
    }

    /// <summary>Nouns, verbs, adjectives, adverbs, each in file order.</summary>
    public IEnumerable<WordNetSynset> AllSynsets() => AllPos.SelectMany(Synsets);

    private string Describe(WordNetPos pos) => _folder == null
        ? $"embedded {pos.DataFileName()}"
        : Path.Combine(_folder, pos.DataFileName());

    private Stream Open(WordNetPos pos, out string name)
    {
        name = pos.DataFileName();
        if (_folder == null) return new BrotliStream(OpenResource(name + ".br"), CompressionMode.Decompress);
        string plain = Path.Combine(_folder, name);
        if (File.Exists(plain)) return File.OpenRead(plain);
        string brotli = plain + ".br";
        if (File.Exists(brotli)) return new BrotliStream(File.OpenRead(brotli), CompressionMode.Decompress);
        throw new FileNotFoundException($"WordNet folder '{_folder}' has no {name} (nor {name}.br)", plain);
    }

    private static Stream OpenResource(string name) =>
        typeof(WordNetSource).Assembly.GetManifestResourceStream(ResourcePrefix + name)
        ?? throw new InvalidOperationException($"resource {ResourcePrefix}{name} is missing from {typeof(WordNetSource).Assembly.GetName().Name}");
}
