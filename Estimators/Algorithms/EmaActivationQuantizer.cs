using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>QAT's activation quantizer (inputs and outputs): in training, the per-batch min and max are tracked with
/// an exponential moving average (decay 0.99; while the step counter is 1 the tracked range is the current batch's,
/// as NNI), and the tensor is fake-quantized on the grid of the tracked range. In evaluation the stored range is used.
/// Before the quant start step, and in evaluation before any range was tracked, the tensor passes through unchanged
/// with its plain gradient (NNI v2 zeroes gradients and divides by a zero scale there: §4.3 [BUG?]).</summary>
internal sealed class EmaActivationQuantizer : AffineTensorQuantizer
{
    private readonly int _quantStartStep;
    private readonly double _decay;
    private Tensor? _trackedMin;
    private Tensor? _trackedMax;

    public EmaActivationQuantizer(QuantType type, QuantSpec spec, int quantStartStep, double decay = 0.99)
        : base(type, spec)
    {
        _quantStartStep = quantStartStep;
        _decay = decay;
    }

    /// <summary>The tracked range (device tensors) or null before the first training batch.</summary>
    public (Tensor Min, Tensor Max)? Tracked => _trackedMin is null ? null : (_trackedMin, _trackedMax!);

    public override Tensor Quantize(Tensor x, QuantContext context)
    {
        if (context.Training) Track(x, context.Step);
        if (context.Step < _quantStartStep || _trackedMin is null) return x;
        if (!context.Training && Current is not null) return Apply(x, Current);
        return Remember(x, QParamsCalculator.Compute(_trackedMin, _trackedMax!, Spec));
    }

    private void Track(Tensor x, long step)
    {
        var (min, max) = ChannelRange.Of(x, Spec);
        using var _ = no_grad();
        if (_trackedMin is null || step == 1)
        {
            _trackedMin?.Dispose();
            _trackedMax?.Dispose();
            _trackedMin = min.DetachFromDisposeScope();
            _trackedMax = max.DetachFromDisposeScope();
            return;
        }
        using (min)
        using (max)
        {
            _trackedMin.mul_(CachedScalars.Of(_decay)).add_(min, CachedScalars.Of(1 - _decay));
            _trackedMax!.mul_(CachedScalars.Of(_decay)).add_(max, CachedScalars.Of(1 - _decay));
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _trackedMin?.Dispose();
            _trackedMax?.Dispose();
        }
        base.Dispose(disposing);
    }
}
