using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>Base of the quantizers whose grid is a scale and zero-point (QAT, Naive, Observer): keeps the last
/// parameters on the device (outside any dispose scope) and fake-quantizes with PyTorch's numerics.</summary>
internal abstract class AffineTensorQuantizer : TensorQuantizer
{
    private QParams? _current;

    protected AffineTensorQuantizer(QuantType type, QuantSpec spec) : base(type, spec) { }

    /// <summary>The parameters in use, on the data's device; null before the first quantized forward.</summary>
    protected QParams? Current => _current;

    /// <summary>Keeps <paramref name="qParams"/> as the current parameters (taking ownership) and returns
    /// <paramref name="x"/> fake-quantized with them, with the masked straight-through gradient.</summary>
    protected Tensor Remember(Tensor x, QParams qParams)
    {
        SetCurrent(qParams);
        return Apply(x, qParams);
    }

    /// <summary>Keeps <paramref name="qParams"/> (taking ownership) as the current parameters.</summary>
    protected void SetCurrent(QParams qParams)
    {
        qParams.Scale.DetachFromDisposeScope();
        qParams.ZeroPoint.DetachFromDisposeScope();
        if (!ReferenceEquals(_current, qParams)) _current?.Dispose();
        _current = qParams;
    }

    /// <summary>Fake-quantizes with given parameters, per tensor or per channel as their spec says.</summary>
    protected static Tensor Apply(Tensor x, QParams qParams)
    {
        using var scope = NewDisposeScope();
        var spec = qParams.Spec;
        var shape = FakeQuantize.BroadcastShape(x, spec.Scheme.IsPerChannel() ? spec.ChannelAxis : null);
        return FakeQuantize.Compute(x, qParams.Scale.reshape(shape), qParams.ZeroPoint.reshape(shape),
            spec.Range.QMin, spec.Range.QMax).MoveToOuterDisposeScope();
    }

    /// <inheritdoc />
    public override QParams? CurrentQParams() => _current is null ? null : ChannelRange.CpuCopy(_current);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) _current?.Dispose();
        _current = null;
    }
}
