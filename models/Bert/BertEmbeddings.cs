using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Models.Bert;

/// <summary>Word + position + token-type embeddings, LayerNorm, dropout.</summary>
internal sealed class BertEmbeddings
{
    private readonly IBackend _be;
    private readonly int _rows, _hidden;
    private readonly float _eps;
    private readonly Tensor _word, _position, _type, _dWord, _dPosition, _dType;
    private readonly LayerNormParams _ln;
    private readonly Tensor _sum, _normed, _mean, _rstd, _dNormed, _dSum;

    public BertEmbeddings(IBackend be, BertParameters p, int batch, int seq, Tensor output, TensorArena arena)
    {
        _be = be; _rows = batch * seq; _hidden = p.Config.HiddenSize; _eps = p.Config.LayerNormEps;
        _word = p["bert.embeddings.word_embeddings.weight"]; _dWord = p.Grad("bert.embeddings.word_embeddings.weight");
        _position = p["bert.embeddings.position_embeddings.weight"]; _dPosition = p.Grad("bert.embeddings.position_embeddings.weight");
        _type = p["bert.embeddings.token_type_embeddings.weight"]; _dType = p.Grad("bert.embeddings.token_type_embeddings.weight");
        _ln = p.LayerNorm("bert.embeddings.LayerNorm");
        _sum = arena.Allocate(DType.F32, _rows, _hidden); _normed = arena.Allocate(DType.F32, _rows, _hidden);
        _mean = arena.Allocate(DType.F32, _rows); _rstd = arena.Allocate(DType.F32, _rows);
        _dNormed = arena.Allocate(DType.F32, _rows, _hidden); _dSum = arena.Allocate(DType.F32, _rows, _hidden);
        Output = output;
    }

    public Tensor Output { get; }

    public void Forward(Tensor ids, Tensor positions, Tensor typeIds, in DropoutPlan dropout)
    {
        _be.EmbeddingForward(ids, _word, _sum, _rows, _hidden, accumulate: false);
        _be.EmbeddingForward(positions, _position, _sum, _rows, _hidden, accumulate: true);
        _be.EmbeddingForward(typeIds, _type, _sum, _rows, _hidden, accumulate: true);
        _be.LayerNormForward(_sum, _ln.Gamma, _ln.Beta, _normed, _mean, _rstd, _rows, _hidden, _eps);
        dropout.Apply(_be, _normed, Output, DropoutPlan.EmbeddingSite, attention: false);
    }

    public void Backward(Tensor dOutput, Tensor ids, Tensor positions, Tensor typeIds, in DropoutPlan dropout)
    {
        dropout.Backward(_be, dOutput, _dNormed, DropoutPlan.EmbeddingSite, attention: false);
        _be.LayerNormBackward(_dNormed, _sum, _ln.Gamma, _mean, _rstd, _dSum, _ln.GammaGrad, _ln.BetaGrad, _rows, _hidden);
        _be.EmbeddingBackward(ids, _dSum, _dWord, _rows, _hidden);
        _be.EmbeddingBackward(positions, _dSum, _dPosition, _rows, _hidden);
        _be.EmbeddingBackward(typeIds, _dSum, _dType, _rows, _hidden);
    }
}
