using NativeSparsity.Engine.Random;

namespace NativeSparsity.Models.Vision;

/// <summary>
/// Light image augmentation: a random crop of the image padded by <see cref="Padding"/> zero pixels
/// on every side (an H x W window at offset (dy, dx) in [-Padding, Padding]^2), then a horizontal
/// flip with probability <see cref="FlipProbability"/>. The draws for an image are one Philox block
/// keyed by (seed, stream = base + epoch, block = image index), so the augmented image is a pure
/// function of (seed, epoch, index):
/// out[y, x] = src[y + dy, x' + dx] with x' = W - 1 - x when flipped, else x; zero outside src.
/// </summary>
public sealed record Augmentation(int Padding = 2, float FlipProbability = 0.5f)
{
    private const ulong StreamBase = 0x5653_0010UL << 32; // + epoch

    /// <summary>No cropping and no flipping.</summary>
    public static Augmentation None { get; } = new(0, 0f);

    /// <summary>True when this augmentation never changes an image.</summary>
    public bool IsIdentity => Padding == 0 && FlipProbability <= 0f;

    /// <summary>The crop offsets (each in [-Padding, Padding]) and flip for one image.</summary>
    public (int OffsetY, int OffsetX, bool Flip) Draw(ulong seed, int epoch, int imageIndex)
    {
        Validate();
        var (a, b, c, _) = Philox.Words(seed, StreamBase + (ulong)(uint)epoch, (ulong)(uint)imageIndex);
        ulong span = (ulong)(2 * Padding + 1);
        int dy = (int)(((ulong)a * span) >> 32) - Padding;
        int dx = (int)(((ulong)b * span) >> 32) - Padding;
        return (dy, dx, Philox.ToUniform(c) < FlipProbability);
    }

    /// <summary>Writes the augmented [H, W, C] image <paramref name="src"/> to <paramref name="dst"/>.</summary>
    public void Apply(ReadOnlySpan<byte> src, Span<byte> dst, int height, int width, int channels, ulong seed, int epoch, int imageIndex)
    {
        int size = height * width * channels;
        if (src.Length != size || dst.Length != size)
            throw new ArgumentException($"expected source and destination of {height}x{width}x{channels} = {size} bytes, got {src.Length} and {dst.Length}");
        var (dy, dx, flip) = Draw(seed, epoch, imageIndex);
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            int sy = y + dy, sx = (flip ? width - 1 - x : x) + dx;
            bool inside = (uint)sy < (uint)height && (uint)sx < (uint)width;
            for (int ch = 0; ch < channels; ch++)
                dst[(y * width + x) * channels + ch] = inside ? src[(sy * width + sx) * channels + ch] : (byte)0;
        }
    }

    internal void Validate()
    {
        if (Padding < 0) throw new ArgumentOutOfRangeException(nameof(Padding), Padding, "expected padding >= 0");
        if (!(FlipProbability >= 0f && FlipProbability <= 1f))
            throw new ArgumentOutOfRangeException(nameof(FlipProbability), FlipProbability, "expected a flip probability in [0, 1]");
    }
}
