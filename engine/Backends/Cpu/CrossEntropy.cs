using System.Buffers;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void CrossEntropyForward(Tensor logits, Tensor targets, Tensor losses, int rows, int classes, int ignoreIndex)
    {
        CheckCrossEntropy(logits, targets, rows, classes, ignoreIndex);
        CpuTensor.ExpectLength(losses, rows, nameof(losses));
        float* x = logits.F32(), loss = losses.F32();
        int* target = targets.I32();
        CpuParallel.ForRows(rows, 3L * classes, (start, end) =>
        {
            float[] scratch = ArrayPool<float>.Shared.Rent(classes);
            try
            {
                var exps = scratch.AsSpan(0, classes);
                for (int r = start; r < end; r++)
                {
                    int t = target[r];
                    if (t == ignoreIndex) { loss[r] = 0f; continue; }
                    var row = new ReadOnlySpan<float>(x + (long)r * classes, classes);
                    float max = TensorPrimitives.Max(row);
                    double sum;
                    fixed (float* pe = exps) sum = VectorExp.ExpShiftedSum(x + (long)r * classes, max, pe, classes);
                    // log-sum-exp minus the target logit, both relative to the max, rounded once.
                    loss[r] = (float)(Math.Log(sum) - ((double)row[t] - max));
                }
            }
            finally { ArrayPool<float>.Shared.Return(scratch); }
        });
    }

    public void CrossEntropyBackward(Tensor logits, Tensor targets, Tensor dlogits, int rows, int classes, int ignoreIndex, float scale)
    {
        CheckCrossEntropy(logits, targets, rows, classes, ignoreIndex);
        CpuTensor.ExpectLength(dlogits, (long)rows * classes, nameof(dlogits));
        float* x = logits.F32(), dx = dlogits.F32();
        int* target = targets.I32();
        CpuParallel.ForRows(rows, 4L * classes, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                var row = new ReadOnlySpan<float>(x + (long)r * classes, classes);
                var grad = new Span<float>(dx + (long)r * classes, classes);
                int t = target[r];
                if (t == ignoreIndex) { grad.Clear(); continue; }
                // grad may be row itself: each step is element-wise in place, and the row max is
                // taken before the first write.
                float max = TensorPrimitives.Max(row);
                float sum = (float)VectorExp.ExpShiftedSum(x + (long)r * classes, max, dx + (long)r * classes, classes);
                TensorPrimitives.Multiply(grad, scale / sum, grad);
                grad[t] -= scale;
            }
        });
    }

    /// <summary>Shapes, dtypes and every target, on the calling thread before anything is written.</summary>
    private static void CheckCrossEntropy(Tensor logits, Tensor targets, int rows, int classes, int ignoreIndex)
    {
        if (rows < 0) throw new ArgumentOutOfRangeException(nameof(rows), rows, "rows must be non-negative");
        if (classes <= 0) throw new ArgumentOutOfRangeException(nameof(classes), classes, "classes must be positive");
        CpuTensor.Expect(logits, DType.F32);
        CpuTensor.ExpectLength(logits, (long)rows * classes, nameof(logits));
        CpuTensor.ExpectLength(targets, rows, nameof(targets));
        int* target = targets.I32();
        for (int r = 0; r < rows; r++)
        {
            int t = target[r];
            if (t != ignoreIndex && (uint)t >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(targets),
                    $"targets[{r}] = {t} is neither a class in [0, {classes}) nor the ignore index {ignoreIndex}");
        }
    }
}
