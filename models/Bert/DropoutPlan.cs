using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Models.Bert;

/// <summary>
/// Where dropout randomness comes from in one training step: Philox stream = step * 2^20 + site,
/// counter 0, so every site of every step draws an independent, reproducible mask that the
/// backward pass regenerates instead of storing, and a resumed run continues with the same masks.
/// </summary>
public readonly record struct DropoutPlan(bool Training, ulong Seed, long Step, float HiddenProb, float AttentionProb)
{
    public static DropoutPlan Off => new(false, 0, 0, 0, 0);

    public const int EmbeddingSite = 0;
    public const int ClassifierSite = (1 << 20) - 1;
    public static int AttentionSite(int layer) => 1 + 3 * layer;
    public static int AttentionOutputSite(int layer) => 2 + 3 * layer;
    public static int FfnOutputSite(int layer) => 3 + 3 * layer;

    private ulong Stream(int site) => ((ulong)Step << 20) | (uint)site;

    private float Prob(bool attention) => Training ? (attention ? AttentionProb : HiddenProb) : 0f;

    public void Apply(IBackend be, Tensor x, Tensor y, int site, bool attention)
    {
        float p = Prob(attention);
        if (p > 0) be.DropoutForward(x, y, p, Seed, Stream(site), 0);
        else if (!ReferenceEquals(x, y) && !SameView(x, y)) be.Copy(x, y);
    }

    public void Backward(IBackend be, Tensor dy, Tensor dx, int site, bool attention)
    {
        float p = Prob(attention);
        if (p > 0) be.DropoutBackward(dy, dx, p, Seed, Stream(site), 0);
        else if (!ReferenceEquals(dy, dx) && !SameView(dy, dx)) be.Copy(dy, dx);
    }

    private static bool SameView(Tensor a, Tensor b) =>
        ReferenceEquals(a.Storage, b.Storage) && a.Offset == b.Offset && a.Length == b.Length;
}
