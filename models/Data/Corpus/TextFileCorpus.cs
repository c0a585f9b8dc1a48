using System.Text;

namespace NativeSparsity.Models.Data.Corpus;

/// <summary>
/// Documents from UTF-8 text files of any size, streamed line by line: a document is a block of
/// non-blank lines, blocks are separated by one or more blank (or whitespace-only) lines, and the
/// lines of a block are joined by single spaces. Files are read in the order given (a folder's
/// files in ordinal name order); a document never spans two files. A block longer than
/// <see cref="MaxDocumentChars"/> is cut at a line boundary into several documents so memory stays bounded.
/// </summary>
public sealed class TextFileCorpus : IDocumentSource
{
    public const int MaxDocumentChars = 1 << 20;

    private readonly string[] _files;
    private long _bytesRead;

    public TextFileCorpus(IEnumerable<string> files)
    {
        _files = files.ToArray();
        if (_files.Length == 0) throw new ArgumentException("no text files given", nameof(files));
        foreach (string f in _files)
            if (!File.Exists(f)) throw new FileNotFoundException($"corpus file '{f}' does not exist", f);
        TotalBytes = _files.Sum(f => new FileInfo(f).Length);
    }

    /// <summary>Every file under <paramref name="folder"/> matching <paramref name="pattern"/> (recursively), in ordinal path order.</summary>
    public static TextFileCorpus FromFolder(string folder, string pattern = "*.txt")
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"corpus folder '{folder}' does not exist");
        var files = Directory.GetFiles(folder, pattern, SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new FileNotFoundException($"corpus folder '{folder}' has no files matching '{pattern}'");
        return new TextFileCorpus(files);
    }

    public IReadOnlyList<string> Files => _files;
    public long TotalBytes { get; }
    public string Description => _files.Length == 1 ? _files[0] : $"{_files.Length} text files from {_files[0]}";
    public double? Progress => TotalBytes == 0 ? 1 : Math.Min(1, (double)Interlocked.Read(ref _bytesRead) / TotalBytes);

    public IEnumerable<string> Documents()
    {
        Interlocked.Exchange(ref _bytesRead, 0);
        var block = new StringBuilder();
        long done = 0;
        foreach (string file in _files)
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            while (reader.ReadLine() is { } line)
            {
                Interlocked.Exchange(ref _bytesRead, done + stream.Position);
                if (string.IsNullOrWhiteSpace(line))
                {
                    if (block.Length > 0) { yield return block.ToString(); block.Clear(); }
                    continue;
                }
                if (block.Length > 0)
                {
                    if (block.Length + 1 + line.Length > MaxDocumentChars) { yield return block.ToString(); block.Clear(); }
                    else block.Append(' ');
                }
                block.Append(line.Trim());
            }
            if (block.Length > 0) { yield return block.ToString(); block.Clear(); }
            done += stream.Length;
            Interlocked.Exchange(ref _bytesRead, done);
        }
    }
}
