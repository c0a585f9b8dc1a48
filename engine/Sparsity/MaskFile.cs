using System.Globalization;
using NativeSparsity.Engine.IO;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Sparsity;

/// <summary>
/// Masks as safetensors: one U8 tensor per prunable matrix under the weight's name plus
/// <see cref="Suffix"/> (torch.nn.utils.prune's "weight_mask" convention), 1 = keep, with the kind,
/// the requested and actual sparsity and the description in the metadata.
/// </summary>
public static class MaskFile
{
    public const string Suffix = "_mask";

    public static void Save(string path, MaskSet mask)
    {
        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "nsparse-mask");
        writer.SetMetadata("kind", mask.Kind.ToString());
        writer.SetMetadata("requested_sparsity", mask.RequestedSparsity.ToString("R", CultureInfo.InvariantCulture));
        writer.SetMetadata("sparsity", mask.Sparsity().ToString("R", CultureInfo.InvariantCulture));
        writer.SetMetadata("description", mask.Description);
        foreach (var m in mask.Set.Matrices)
            writer.Add(m.Name + Suffix, mask.View(m), new long[] { m.Rows, m.Cols });
        writer.Write(path);
    }

    /// <summary>Loads a mask for <paramref name="set"/>; every matrix must be present with its shape.</summary>
    public static MaskSet Load(string path, PrunableSet set, Tensor keep)
    {
        using var file = SafetensorsFile.Open(path);
        foreach (var m in set.Matrices)
        {
            string name = m.Name + Suffix;
            if (!file.Contains(name))
                throw new InvalidDataException($"{path}: no mask tensor '{name}' for prunable matrix {m.Name}");
            var info = file.Get(name);
            if (info.DType != SafetensorsDType.U8 || !info.Shape.SequenceEqual(new long[] { m.Rows, m.Cols }))
                throw new InvalidDataException($"{path}: '{name}' is {info.DType}[{string.Join(", ", info.Shape)}], expected U8[{m.Rows}, {m.Cols}]");
            file.ReadInto(name, keep.Slice(m.Offset, m.Rows, m.Cols));
        }
        var meta = file.Metadata;
        var kind = meta.TryGetValue("kind", out var k) && Enum.TryParse<MaskKind>(k, out var parsed) ? parsed : MaskKind.GlobalMagnitude;
        double requested = meta.TryGetValue("requested_sparsity", out var r) ? double.Parse(r, CultureInfo.InvariantCulture) : double.NaN;
        return new MaskSet(set, keep, kind, requested, meta.TryGetValue("description", out var d) ? d : Path.GetFileName(path));
    }
}
