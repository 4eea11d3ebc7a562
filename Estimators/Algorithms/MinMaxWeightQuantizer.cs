using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>Weights on a grid from their current range (per tensor or per output channel), recomputed at every
/// forward: QAT's weight quantizer (no EMA for weights, as NNI) and Naive's one-shot rounding. Before the layer's
/// quant start step the weight passes through unchanged with its plain gradient (NNI v2 zeroes it: §4.3 [BUG?]).</summary>
internal sealed class MinMaxWeightQuantizer : AffineTensorQuantizer
{
    private readonly int _quantStartStep;

    public MinMaxWeightQuantizer(QuantSpec spec, int quantStartStep = 0) : base(QuantType.Weight, spec) =>
        _quantStartStep = quantStartStep;

    public override Tensor Quantize(Tensor x, QuantContext context)
    {
        if (context.Step < _quantStartStep) return x;
        var (min, max) = ChannelRange.Of(x, Spec);
        using (min)
        using (max)
            return Remember(x, QParamsCalculator.Compute(min, max, Spec));
    }
}
