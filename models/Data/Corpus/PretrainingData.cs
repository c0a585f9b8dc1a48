using System.Globalization;
using NativeSparsity.Engine.IO;
using NativeSparsity.Models.Text;

namespace NativeSparsity.Models.Data.Corpus;

/// <summary>A tokenizer and the token corpus built with it.</summary>
public sealed record PreparedData(CompactBpeTokenizer Tokenizer, TokenCorpus Corpus, bool Reused) : IDisposable
{
    public void Dispose() => Corpus.Dispose();
}

/// <summary>
/// Prepares pre-training data once and reuses it afterwards. Under <c>cacheFolder</c>:
/// <code>
/// vocab-8192/vocab.compact-bpe.json      compact BPE vocabulary counted over the WHOLE source
/// vocab-8192/tokens-f0.6-s0/             token shards of the kept fraction (seed 0)
/// </code>
/// The vocabulary does not depend on the fraction, so every cell of a data-volume study shares it.
/// A cached corpus is reused only when it opens cleanly with that vocabulary and was built from a
/// source with the same description, fraction and seed; otherwise it is rebuilt (atomically).
/// The work is done under the vocabulary folder's lock, so two processes started together build once.
/// </summary>
public static class PretrainingData
{
    public static PreparedData Prepare(IDocumentSource source, string cacheFolder, int vocabSize = CompactBpeTokenizer.DefaultVocabSize,
                                       double fraction = 1.0, ulong seed = 0,
                                       IProgress<long>? countProgress = null, IProgress<ShardBuildProgress>? buildProgress = null,
                                       Action<string>? say = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        DataFraction.Check(fraction);
        string vocabFolder = Path.Combine(cacheFolder, $"vocab-{vocabSize}");
        AtomicFolder.Recover(vocabFolder);
        // One builder at a time per vocabulary folder: a second process waits here and then reuses what the
        // first built (and never has its half-built temporary folder removed by the other's Recover).
        using var folderLock = FolderLock.AcquireWaiting(vocabFolder, "tokenise corpus", say);
        CompactBpeTokenizer? tokenizer = null;
        if (File.Exists(Path.Combine(vocabFolder, CompactBpeTokenizer.FileName)))
        {
            try { tokenizer = CompactBpeTokenizer.Load(vocabFolder); }
            catch (InvalidDataException) { tokenizer = null; }
        }
        if (tokenizer == null)
        {
            tokenizer = CompactBpeTokenizer.Build(source.Documents(), vocabSize, progress: countProgress);
            tokenizer.Save(vocabFolder);
        }

        string tokens = Path.Combine(vocabFolder, string.Create(CultureInfo.InvariantCulture, $"tokens-f{fraction:R}-s{seed}"));
        AtomicFolder.Recover(tokens);
        if (Directory.Exists(tokens))
        {
            try
            {
                var cached = TokenCorpus.Open(tokens, tokenizer);
                if (cached.Source == source.Description && cached.Fraction == fraction && cached.Seed == seed)
                    return new PreparedData(tokenizer, cached, Reused: true);
                cached.Dispose();
            }
            catch (Exception e) when (e is InvalidDataException or IOException or System.Text.Json.JsonException or KeyNotFoundException)
            {
                // damaged or foreign: rebuild below
            }
        }
        var corpus = TokenCorpus.Build(source, tokenizer, tokens, new ShardBuildOptions { Fraction = fraction, Seed = seed }, buildProgress);
        return new PreparedData(tokenizer, corpus, Reused: false);
    }
}
