using NativeSparsity.Engine.Backends.Cpu;

namespace NativeSparsity.Models.Vision;

/// <summary>
/// One batch for a ViT: <see cref="Patches"/> is [BatchSize, PatchCount, PatchDim] row-major, i.e.
/// [BatchSize * PatchCount, PatchDim] rows of flattened normalised patches; <see cref="Labels"/> is
/// [BatchSize]; <see cref="ImageIndices"/> says which images of the set the rows came from.
/// </summary>
public sealed record VisionBatch(float[] Patches, int[] Labels, int[] ImageIndices, int PatchCount, int PatchDim)
{
    public int BatchSize => Labels.Length;

    /// <summary>Number of patch rows, BatchSize * PatchCount.</summary>
    public int Rows => BatchSize * PatchCount;
}

/// <summary>
/// Turns 8-bit images into ViT batches: augmentation (optional, <see cref="Augmentation"/>), pixel
/// normalisation (<see cref="PixelNormalization"/>), then patchify. Patch p = (row py, column px)
/// of the patch grid is p = py * (W / S) + px; inside a patch, element (i, j, c) of the S x S x C
/// block is at (i * S + j) * C + c. Batches are pure functions of (images, indices, seed, epoch),
/// and an epoch's batch order is a Philox permutation keyed by (seed, epoch).
/// </summary>
public sealed class PatchBatcher
{
    private const ulong OrderStreamBase = 0x5653_0020UL << 32; // + epoch
    private readonly float[] _table;

    public int Height { get; }
    public int Width { get; }
    public int Channels { get; }

    /// <summary>Side of a square patch; divides both Height and Width.</summary>
    public int PatchSize { get; }

    /// <summary>Patches per image, (H / S) * (W / S).</summary>
    public int PatchCount => (Height / PatchSize) * (Width / PatchSize);

    /// <summary>Floats per patch, S * S * C.</summary>
    public int PatchDim => PatchSize * PatchSize * Channels;

    public PixelNormalization Normalization { get; }

    /// <summary>Applied to batches built with augment = true.</summary>
    public Augmentation Augmentation { get; }

    public PatchBatcher(int height, int width, int channels, int patchSize, PixelNormalization normalization, Augmentation? augmentation = null)
    {
        CheckGeometry(height, width, channels, patchSize);
        Height = height; Width = width; Channels = channels; PatchSize = patchSize;
        Normalization = normalization;
        Augmentation = augmentation ?? new Augmentation();
        Augmentation.Validate();
        _table = normalization.Table();
    }

    /// <summary>A batcher for <paramref name="images"/>' geometry.</summary>
    public static PatchBatcher For(LabeledImages images, int patchSize, PixelNormalization normalization, Augmentation? augmentation = null) =>
        new(images.Height, images.Width, images.Channels, patchSize, normalization, augmentation);

    /// <summary>
    /// Rearranges a float image [H, W, C] into patches [P, S * S * C] (see the class summary for the order).
    /// </summary>
    public static void Patchify(ReadOnlySpan<float> image, Span<float> patches, int height, int width, int channels, int patchSize)
    {
        CheckGeometry(height, width, channels, patchSize);
        int size = height * width * channels;
        if (image.Length != size || patches.Length != size)
            throw new ArgumentException($"expected image and patches of {height}x{width}x{channels} = {size} floats, got {image.Length} and {patches.Length}");
        int perRow = width / patchSize, rowLength = patchSize * channels, patchDim = patchSize * rowLength;
        for (int y = 0; y < height; y++)
        {
            int py = y / patchSize, i = y % patchSize;
            for (int px = 0; px < perRow; px++)
                image.Slice((y * width + px * patchSize) * channels, rowLength)
                     .CopyTo(patches.Slice((py * perRow + px) * patchDim + i * rowLength, rowLength));
        }
    }

    /// <summary>The order an epoch visits <paramref name="count"/> images: a permutation keyed by (seed, epoch).</summary>
    public static int[] EpochOrder(int count, ulong seed, int epoch) =>
        DatasetSplit.Permutation(count, seed, OrderStreamBase + (ulong)(uint)epoch);

    /// <summary>Batches in an epoch of <paramref name="count"/> images; the last may be smaller.</summary>
    public static int BatchCount(int count, int batchSize)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "expected batch size > 0");
        return (count + batchSize - 1) / batchSize;
    }

    /// <summary>
    /// Batch <paramref name="batchIndex"/> of epoch <paramref name="epoch"/>: the images at positions
    /// [batchIndex * batchSize, ...) of <see cref="EpochOrder"/> (unshuffled order when
    /// <paramref name="shuffle"/> is false); the last batch holds the remainder.
    /// </summary>
    public VisionBatch EpochBatch(LabeledImages images, int batchSize, int batchIndex, ulong seed, int epoch, bool augment, bool shuffle = true)
    {
        int batches = BatchCount(images.Count, batchSize);
        if ((uint)batchIndex >= (uint)batches)
            throw new ArgumentOutOfRangeException(nameof(batchIndex), batchIndex, $"expected a batch index in [0, {batches})");
        int start = batchIndex * batchSize, length = Math.Min(batchSize, images.Count - start);
        int[] indices = shuffle ? EpochOrder(images.Count, seed, epoch).AsSpan(start, length).ToArray()
                                : Enumerable.Range(start, length).ToArray();
        return MakeBatch(images, indices, seed, epoch, augment);
    }

    /// <summary>Every batch of one epoch, in order (see <see cref="EpochBatch"/>).</summary>
    public IEnumerable<VisionBatch> Epoch(LabeledImages images, int batchSize, ulong seed, int epoch, bool augment, bool shuffle = true)
    {
        int batches = BatchCount(images.Count, batchSize);
        int[] order = shuffle ? EpochOrder(images.Count, seed, epoch) : Enumerable.Range(0, images.Count).ToArray();
        for (int b = 0; b < batches; b++)
        {
            int start = b * batchSize, length = Math.Min(batchSize, images.Count - start);
            yield return MakeBatch(images, order.AsSpan(start, length).ToArray(), seed, epoch, augment);
        }
    }

    /// <summary>
    /// The batch of the images at <paramref name="indices"/>: each augmented (when
    /// <paramref name="augment"/>) with key (seed, epoch, image index), normalised and patchified.
    /// </summary>
    public VisionBatch MakeBatch(LabeledImages images, int[] indices, ulong seed, int epoch, bool augment)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(indices);
        if (images.Height != Height || images.Width != Width || images.Channels != Channels)
            throw new ArgumentException($"images are {images.Height}x{images.Width}x{images.Channels}, the batcher expects {Height}x{Width}x{Channels}", nameof(images));
        foreach (int i in indices)
            if ((uint)i >= (uint)images.Count) throw new ArgumentOutOfRangeException(nameof(indices), i, $"expected image indices in [0, {images.Count})");

        int per = images.PixelsPerImage, perRow = Width / PatchSize, s = PatchSize, c = Channels, patchDim = PatchDim;
        var patches = new float[(long)indices.Length * per];
        var labels = new int[indices.Length];
        bool doAugment = augment && !Augmentation.IsIdentity;
        CpuParallel.For(indices.Length, b =>
        {
            int index = indices[b];
            labels[b] = images.Labels[index];
            var src = images.Image(index);
            var dst = patches.AsSpan(b * per, per);
            int dy = 0, dx = 0;
            bool flip = false;
            if (doAugment) (dy, dx, flip) = Augmentation.Draw(seed, epoch, index);
            for (int y = 0; y < Height; y++)
            {
                int sy = y + dy, rowBase = (y / s) * perRow * patchDim + (y % s) * s * c;
                bool rowInside = (uint)sy < (uint)Height;
                for (int x = 0; x < Width; x++)
                {
                    int sx = (flip ? Width - 1 - x : x) + dx;
                    bool inside = rowInside && (uint)sx < (uint)Width;
                    int o = rowBase + (x / s) * patchDim + (x % s) * c;
                    for (int ch = 0; ch < c; ch++)
                        dst[o + ch] = _table[inside ? src[(sy * Width + sx) * c + ch] : 0];
                }
            }
        }, per);
        return new VisionBatch(patches, labels, indices, PatchCount, patchDim);
    }

    private static void CheckGeometry(int height, int width, int channels, int patchSize)
    {
        if (height <= 0 || width <= 0 || channels <= 0)
            throw new ArgumentException($"image size must be positive, got {height}x{width}x{channels}");
        if (patchSize <= 0 || height % patchSize != 0 || width % patchSize != 0)
            throw new ArgumentException($"patch size {patchSize} must divide the image size {height}x{width} (for 28x28: 1, 2, 4, 7, 14 or 28)", nameof(patchSize));
    }
}
