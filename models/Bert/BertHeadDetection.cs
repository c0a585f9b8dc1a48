using NativeSparsity.Engine.IO;

namespace NativeSparsity.Models.Bert;

/// <summary>Works out from a checkpoint's tensor names which heads it carries.</summary>
public static class BertHeadDetection
{
    public static BertHeads Detect(string folder)
    {
        string path = Path.Combine(folder, BertCheckpoint.WeightsFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no model.safetensors in the checkpoint folder", path);
        using var file = SafetensorsFile.Open(path);
        var names = file.Tensors.Select(t => BertCheckpoint.Canonical(t.Name)).ToHashSet(StringComparer.Ordinal);
        int labels = 0;
        if (names.Contains("classifier.weight")) labels = (int)file.Tensors.First(t => BertCheckpoint.Canonical(t.Name) == "classifier.weight").Shape[0];
        return new BertHeads(
            MaskedLm: names.Contains("cls.predictions.transform.dense.weight"),
            NextSentence: names.Contains("cls.seq_relationship.weight"),
            Pooler: names.Contains("bert.pooler.dense.weight") || labels > 0,
            ClassifierLabels: labels);
    }
}
