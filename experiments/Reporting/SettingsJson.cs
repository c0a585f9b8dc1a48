using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Experiments.Vision;

namespace NativeSparsity.Experiments.Reporting;

/// <summary>
/// Compile-time JSON metadata of every settings record the program writes (run.json, trainer state,
/// metrics, study cache keys). Source-generated rather than reflected so the trimmed GPU bundle keeps
/// every property, and the program starts without building serializers at run time.
/// </summary>
[JsonSerializable(typeof(PretrainRunOptions))]
[JsonSerializable(typeof(PretrainSettings))]
[JsonSerializable(typeof(SupervisedRunOptions))]
[JsonSerializable(typeof(FinetuneSettings))]
[JsonSerializable(typeof(VitPretrainRunOptions))]
[JsonSerializable(typeof(VitFinetuneSettings))]
internal sealed partial class SettingsJsonContext : JsonSerializerContext;

/// <summary>
/// The one way settings become JSON. The output is byte for byte what reflection-based System.Text.Json
/// gave with the same options (tested), so run.json files and cache-folder hashes written before stay valid.
/// </summary>
public static class SettingsJson
{
    private static readonly SettingsJsonContext Compact = SettingsJsonContext.Default;
    private static readonly SettingsJsonContext Indented = new(new JsonSerializerOptions { WriteIndented = true });
    private static readonly SettingsJsonContext IndentedEnumNames = new(new JsonSerializerOptions
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter<VitObjective>() },
    });

    /// <summary>Indented JSON, enums as numbers (run.json of BERT runs).</summary>
    public static string ToIndentedString<T>(T value) => JsonSerializer.Serialize(value, Info<T>(Indented));

    /// <summary>Indented JSON with enum members by name (run.json of ViT runs).</summary>
    public static string ToIndentedStringWithEnumNames<T>(T value) => JsonSerializer.Serialize(value, Info<T>(IndentedEnumNames));

    /// <summary>A node to embed in a larger document (trainer state, metrics).</summary>
    public static JsonNode? ToNode<T>(T value) => JsonSerializer.SerializeToNode(value, Info<T>(Compact));

    /// <summary>Compact UTF-8 bytes, the input of settings hashes.</summary>
    public static byte[] ToUtf8Bytes<T>(T value) => JsonSerializer.SerializeToUtf8Bytes(value, Info<T>(Compact));

    private static JsonTypeInfo<T> Info<T>(JsonSerializerContext context) =>
        context.GetTypeInfo(typeof(T)) as JsonTypeInfo<T>
        ?? throw new NotSupportedException($"{typeof(T).Name} is not registered in {nameof(SettingsJsonContext)}; add a [JsonSerializable] for it");
}
