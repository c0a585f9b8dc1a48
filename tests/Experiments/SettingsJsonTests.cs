using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using NativeSparsity.Experiments.Reporting;
using NativeSparsity.Experiments.Training;
using NativeSparsity.Experiments.Vision;
using NUnit.Framework;

namespace NativeSparsity.Tests.Experiments;

/// <summary>
/// The source-generated settings JSON must equal, byte for byte, what reflection-based System.Text.Json
/// wrote before it: run.json is compared on --resume and study cache folders are named by a hash of it,
/// so any difference would refuse to resume existing runs or silently redo cached pre-training.
/// </summary>
public class SettingsJsonTests
{
    private static readonly JsonSerializerOptions ReflectionIndented = new() { WriteIndented = true };
    private static readonly JsonSerializerOptions ReflectionIndentedEnumNames = new()
    {
        WriteIndented = true, Converters = { new JsonStringEnumConverter() },
    };

    private static PretrainRunOptions NonDefaultPretrain() => new()
    {
        OutputFolder = "/tmp/run", Device = "cuda:1", Threads = 3, Preset = "mini", Layers = 3, Hidden = 192,
        Data = new[] { "a.txt", "b \"quoted\".txt" }, DataFraction = 0.7, DataSeed = 12345678901234567890UL,
        CacheFolder = "/tmp/cache",
        Train = new PretrainSettings { BatchSize = 7, Steps = 20000, LearningRate = 3.3e-4f, WarmupSteps = 1000, NextSentence = true },
        Probe = new ProbeSettings { Every = 200, Levels = new[] { 0.25, 0.5 }, OmpEvery = 1000, Epsilon = 0.005 },
        KeepEvery = 5000, Resume = true,
    };

    [Test]
    public void PretrainRunOptions_IndentedEqualsReflection()
    {
        foreach (var o in new[] { new PretrainRunOptions { OutputFolder = "x" }, NonDefaultPretrain() })
            Assert.That(SettingsJson.ToIndentedString(o), Is.EqualTo(JsonSerializer.Serialize(o, ReflectionIndented)));
    }

    [Test]
    public void SupervisedRunOptions_IndentedEqualsReflection()
    {
        var so = new SupervisedRunOptions { Run = NonDefaultPretrain(), Task = "antonym", MaxExamplesPerSplit = 300 };
        Assert.That(SettingsJson.ToIndentedString(so), Is.EqualTo(JsonSerializer.Serialize(so, ReflectionIndented)));
    }

    [Test]
    public void VitPretrainRunOptions_EnumNamesEqualReflection_AndHashBytesToo()
    {
        var o = new VitPretrainRunOptions { OutputFolder = "v", Objective = VitObjective.Supervised, Layers = 2, DataFraction = 0.1 };
        Assert.That(SettingsJson.ToIndentedStringWithEnumNames(o), Is.EqualTo(JsonSerializer.Serialize(o, ReflectionIndentedEnumNames)));
        Assert.That(SettingsJson.ToIndentedStringWithEnumNames(o), Does.Contain("\"Supervised\""));
        Assert.That(Encoding.UTF8.GetString(SettingsJson.ToUtf8Bytes(o)), Is.EqualTo(JsonSerializer.Serialize(o)));
    }

    [Test]
    public void HashAndNodeInputsEqualReflection()
    {
        var p = NonDefaultPretrain();
        Assert.That(SettingsJson.ToUtf8Bytes(p), Is.EqualTo(JsonSerializer.SerializeToUtf8Bytes(p)));
        var ft = new FinetuneSettings();
        Assert.That(SettingsJson.ToNode(ft)!.ToJsonString(), Is.EqualTo(JsonSerializer.SerializeToNode(ft)!.ToJsonString()));
        var vft = VitFinetuneSettings.Quick with { Augment = false, MaxSteps = 17 };
        Assert.That(SettingsJson.ToNode(vft)!.ToJsonString(), Is.EqualTo(JsonSerializer.SerializeToNode(vft)!.ToJsonString()));
        Assert.That(SettingsJson.ToNode(p.Train)!.ToJsonString(), Is.EqualTo(JsonSerializer.SerializeToNode(p.Train)!.ToJsonString()));
    }

    [Test]
    public void UnregisteredTypeIsRefusedByName()
    {
        var e = Assert.Throws<NotSupportedException>(() => SettingsJson.ToNode(new Uri("http://x")));
        Assert.That(e!.Message, Does.Contain("Uri"));
    }
}
