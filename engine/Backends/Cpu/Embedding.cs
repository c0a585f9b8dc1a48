using System.Runtime.Intrinsics;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Columns of the table one backward chunk owns: 64 floats, four cache lines.</summary>
    private const int EmbeddingColumnBlock = 64;

    public void EmbeddingForward(Tensor ids, Tensor table, Tensor output, int count, int dim, bool accumulate)
    {
        CheckEmbeddingIds(ids, table, count, dim, nameof(table));
        CpuTensor.ExpectLength(output, (long)count * dim, nameof(output));
        int* id = ids.I32();
        float* tab = table.F32(), outp = output.F32();
        CpuParallel.ForRows(count, dim, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                var src = new ReadOnlySpan<float>(tab + (long)id[i] * dim, dim);
                var dst = new Span<float>(outp + (long)i * dim, dim);
                if (accumulate) TensorPrimitives.Add(dst, src, dst);
                else src.CopyTo(dst);
            }
        });
    }

    public void EmbeddingBackward(Tensor ids, Tensor doutput, Tensor dtable, int count, int dim)
    {
        CheckEmbeddingIds(ids, dtable, count, dim, nameof(dtable));
        CpuTensor.ExpectLength(doutput, (long)count * dim, nameof(doutput));
        int* id = ids.I32();
        float* g = doutput.F32(), dtab = dtable.F32();
        // Repeated ids make this a scatter-add. Each chunk owns a block of columns and walks the
        // ids in order, so every element is summed in index order whatever the thread count.
        int blocks = (dim + EmbeddingColumnBlock - 1) / EmbeddingColumnBlock;
        CpuParallel.For(blocks, block =>
        {
            int c0 = block * EmbeddingColumnBlock;
            int width = Math.Min(EmbeddingColumnBlock, dim - c0);
            for (int i = 0; i < count; i++)
            {
                float* src = g + (long)i * dim + c0, dst = dtab + (long)id[i] * dim + c0;
                int j = 0;
                for (; j + 8 <= width; j += 8) (Vector256.Load(dst + j) + Vector256.Load(src + j)).Store(dst + j);
                for (; j < width; j++) dst[j] += src[j];
            }
        }, (long)count * EmbeddingColumnBlock);
    }

    /// <summary>
    /// Checks shapes and every id on the calling thread, before anything is written, so a bad id
    /// surfaces as one clear exception rather than from inside a parallel loop. Returns vocab.
    /// </summary>
    private static int CheckEmbeddingIds(Tensor ids, Tensor table, int count, int dim, string tableName)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "count must be non-negative");
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), dim, "dim must be positive");
        CpuTensor.Expect(table, DType.F32);
        if (table.Length % dim != 0)
            throw new ArgumentException($"{tableName}: {table} holds {table.Length} elements, not a multiple of dim {dim}");
        long vocabLong = table.Length / dim;
        int vocab = (int)Math.Min(vocabLong, int.MaxValue);
        CpuTensor.ExpectLength(ids, count, nameof(ids));
        int* id = ids.I32();
        for (int i = 0; i < count; i++)
        {
            if ((uint)id[i] >= (uint)vocab)
                throw new ArgumentOutOfRangeException(nameof(ids),
                    $"ids[{i}] = {id[i]} lies outside the {tableName} vocabulary [0, {vocab})");
        }
        return vocab;
    }
}
