using MLNetQuant.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>LSQ (Esser et al., ICLR 2020): a learned step size per tensor (per output channel for per-channel weight
/// schemes), zero-point 0, initialised as in the paper to <c>2·mean|x|/√Qp</c> (weights when the quantizer is built,
/// activations from every training batch until the first optimizer step), with the paper's gradient scale
/// <c>g = 1/√(N·Qp)</c> (N = weights of the layer, or features of one example for activations; NNI counts the whole
/// batch). Weights use the signed grid [−2^(b−1), 2^(b−1) − 1]; an activation whose first batch is non-negative uses
/// the unsigned grid [0, 2^b − 1] instead of wasting half the signed one (NNI does: §7.1).</summary>
internal sealed class LsqQuantizer : TensorQuantizer
{
    private readonly Parameter _scale;
    private readonly Tensor _zeroPoint;
    private bool _initialized;
    private bool _gridChosen;

    public LsqQuantizer(QuantType type, QuantSpec spec, Tensor? weight, Device device) : base(type, Signed(spec, type))
    {
        var channels = Spec.Scheme.IsPerChannel() && weight is not null ? weight.shape[Spec.ChannelAxis] : 1;
        _scale = new Parameter(ones(channels, dtype: ScalarType.Float32, device: device));
        _zeroPoint = zeros(channels, dtype: ScalarType.Float32, device: device);
        if (weight is null) return;
        Initialise(weight);
        _gridChosen = true;
    }

    public override IEnumerable<Parameter> LearnableParameters => new[] { _scale };

    public override Tensor Quantize(Tensor x, QuantContext context)
    {
        if (Type != QuantType.Weight && context.Training && context.Step == 1)
        {
            if (!_gridChosen) ChooseActivationGrid(x);
            Initialise(x);
        }
        if (!_initialized) return x;
        using (no_grad()) _scale.clamp_min_(CachedScalars.Of(QParamsCalculator.Eps));
        var numel = Type == QuantType.Weight || x.dim() < 2 ? x.numel() : x.numel() / x.shape[0];
        var range = Spec.Range;
        var gradFactor = LearnableFakeQuantize.GradFactor(numel, Math.Max(range.QMax, 1));
        return LearnableFakeQuantize.Apply(x, _scale, _zeroPoint, range.QMin, range.QMax, gradFactor,
            Spec.Scheme.IsPerChannel() ? Spec.ChannelAxis : null);
    }

    public override QParams? CurrentQParams() => _initialized
        ? new QParams(_scale.detach().cpu().clone(), _zeroPoint.detach().cpu().to_type(ScalarType.Int64), Spec)
        : null;

    private void ChooseActivationGrid(Tensor x)
    {
        _gridChosen = true;
        using var _ = no_grad();
        if (x.detach().min().item<float>() >= 0)
            Spec = new QuantSpec(QuantDtype.UInt, Spec.Bits, QuantScheme.PerTensorAffine);
    }

    private void Initialise(Tensor x)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var values = x.detach().to_type(ScalarType.Float32);
        var meanAbs = Spec.Scheme.IsPerChannel()
            ? values.abs().movedim(new long[] { Spec.ChannelAxis }, new long[] { 0 }).reshape(_scale.shape[0], -1).mean(new long[] { 1 })
            : values.abs().mean().reshape(1);
        _scale.copy_(meanAbs.mul(CachedScalars.Of(2.0 / Math.Sqrt(Spec.Range.QMax))).clamp_min(CachedScalars.Of(QParamsCalculator.Eps)));
        _initialized = true;
    }

    // LSQ is symmetric with zero-point 0: weights (and activations until proven non-negative) use the full signed grid.
    private static QuantSpec Signed(QuantSpec spec, QuantType type) =>
        new(QuantDtype.Int, spec.Bits, type == QuantType.Weight && spec.Scheme.IsPerChannel()
            ? QuantScheme.PerChannelSymmetric : QuantScheme.PerTensorSymmetric, QuantRangeKind.Full, spec.ChannelAxis);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _scale.Dispose();
            _zeroPoint.Dispose();
        }
    }
}
