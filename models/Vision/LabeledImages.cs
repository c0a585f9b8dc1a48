namespace NativeSparsity.Models.Vision;

/// <summary>
/// A set of 8-bit images with class labels, stored contiguously as [Count, Height, Width, Channels]
/// (channels last; Fashion-MNIST has one channel).
/// </summary>
public sealed class LabeledImages
{
    /// <summary>Pixels, [Count, Height, Width, Channels] row-major.</summary>
    public byte[] Pixels { get; }

    /// <summary>Class of each image, in [0, <see cref="ClassCount"/>).</summary>
    public int[] Labels { get; }

    public int Count => Labels.Length;
    public int Height { get; }
    public int Width { get; }
    public int Channels { get; }
    public int ClassCount { get; }

    /// <summary>Bytes per image: Height * Width * Channels.</summary>
    public int PixelsPerImage => Height * Width * Channels;

    /// <summary>Wraps the arrays (not copied) after checking that sizes and labels agree.</summary>
    public LabeledImages(byte[] pixels, int[] labels, int height, int width, int channels, int classCount)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        if (height <= 0 || width <= 0 || channels <= 0)
            throw new ArgumentException($"image size must be positive, got {height}x{width}x{channels}");
        if (classCount <= 0) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "expected at least one class");
        long expected = (long)labels.Length * height * width * channels;
        if (pixels.LongLength != expected)
            throw new ArgumentException($"pixels: expected {labels.Length} images x {height}x{width}x{channels} = {expected} bytes, found {pixels.LongLength}", nameof(pixels));
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classCount)
                throw new ArgumentException($"labels[{i}] = {labels[i]} is outside [0, {classCount})", nameof(labels));
        Pixels = pixels; Labels = labels; Height = height; Width = width; Channels = channels; ClassCount = classCount;
    }

    /// <summary>The pixels of image <paramref name="index"/>.</summary>
    public ReadOnlySpan<byte> Image(int index)
    {
        if ((uint)index >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"expected an image index in [0, {Count})");
        return Pixels.AsSpan(index * PixelsPerImage, PixelsPerImage);
    }

    /// <summary>A copy holding the images at <paramref name="indices"/>, in that order.</summary>
    public LabeledImages Subset(ReadOnlySpan<int> indices)
    {
        int per = PixelsPerImage;
        var pixels = new byte[(long)indices.Length * per];
        var labels = new int[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            Image(indices[i]).CopyTo(pixels.AsSpan(i * per, per));
            labels[i] = Labels[indices[i]];
        }
        return new LabeledImages(pixels, labels, Height, Width, Channels, ClassCount);
    }

    /// <summary>How many images each class has.</summary>
    public int[] ClassCounts()
    {
        var counts = new int[ClassCount];
        foreach (int label in Labels) counts[label]++;
        return counts;
    }
}
