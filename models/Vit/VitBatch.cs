namespace NativeSparsity.Models.Vit;

/// <summary>
/// One batch of images, already patchified and normalised by the data side. Patches are
/// [Batch * NumPatches, PatchDim] row-major: image b's patch j (row-major over the patch grid) is
/// row b*NumPatches + j, its elements in (c, y, x) order (see <see cref="VitConfig"/>).
/// </summary>
public sealed class VitBatch
{
    public VitBatch(int batch, int numPatches, int patchDim)
    {
        if (batch <= 0 || numPatches <= 0 || patchDim <= 0)
            throw new ArgumentException($"ViT batch: batch ({batch}), patches ({numPatches}) and patch dim ({patchDim}) must be positive");
        Batch = batch; NumPatches = numPatches; PatchDim = patchDim;
        Patches = new float[(long)batch * numPatches * patchDim];
    }

    public VitBatch(VitConfig config, int batch) : this(batch, config.NumPatches, config.PatchDim) { }

    public int Batch { get; }
    public int NumPatches { get; }
    public int PatchDim { get; }

    /// <summary>[Batch * NumPatches * PatchDim] pixels.</summary>
    public float[] Patches { get; }

    /// <summary>Class per image, [Batch]; <see cref="IgnoreLabel"/> marks a padding image. Null: no classification loss.</summary>
    public int[]? Labels { get; set; }

    /// <summary>
    /// Masked-patch plan, [Batch * NumPatches]: nonzero hides the patch (its embedding is replaced
    /// by the mask token) and makes it a reconstruction target. Null: no masking, no SSL loss.
    /// </summary>
    public byte[]? PatchMask { get; set; }

    /// <summary>
    /// Reconstruction targets [masked count * PatchDim], masked patches in ascending row order.
    /// Null: the masked patches' own pixels from <see cref="Patches"/> (SimMIM).
    /// </summary>
    public float[]? MaskedTargets { get; set; }

    public const int IgnoreLabel = -100;

    public int MaskedCount => PatchMask?.Count(m => m != 0) ?? 0;

    /// <summary>Throws naming the field unless the batch fits the config.</summary>
    public void Validate(VitConfig config, int labels)
    {
        if (NumPatches != config.NumPatches || PatchDim != config.PatchDim)
            throw new ArgumentException($"ViT batch: {NumPatches} patches of {PatchDim} values, the config expects {config.NumPatches} of {config.PatchDim}");
        if (Labels != null)
        {
            if (Labels.Length != Batch) throw new ArgumentException($"ViT batch: {Labels.Length} labels for {Batch} images");
            if (labels > 0)
                for (int i = 0; i < Labels.Length; i++)
                    if ((uint)Labels[i] >= (uint)labels && Labels[i] != IgnoreLabel)
                        throw new ArgumentException($"ViT batch: label {Labels[i]} of image {i} is outside [0, {labels}) and is not the ignore label {IgnoreLabel}");
        }
        if (PatchMask != null && PatchMask.Length != Batch * NumPatches)
            throw new ArgumentException($"ViT batch: PatchMask has {PatchMask.Length} entries, expected batch*patches = {Batch * NumPatches}");
        if (MaskedTargets != null)
        {
            if (PatchMask == null) throw new ArgumentException("ViT batch: MaskedTargets given without a PatchMask");
            long expected = (long)MaskedCount * PatchDim;
            if (MaskedTargets.Length != expected)
                throw new ArgumentException($"ViT batch: MaskedTargets has {MaskedTargets.Length} values, expected masked count {MaskedCount} x patch dim {PatchDim} = {expected}");
        }
    }
}
