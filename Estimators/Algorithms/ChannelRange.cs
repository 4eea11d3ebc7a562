using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>Minimum and maximum of a tensor, per tensor or per channel, as 1-D float32 tensors without gradient.</summary>
internal static class ChannelRange
{
    /// <summary>The range of <paramref name="x"/> under <paramref name="spec"/>: shape [1] per tensor, [C] per channel
    /// along the spec's axis.</summary>
    public static (Tensor Min, Tensor Max) Of(Tensor x, QuantSpec spec)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var values = x.detach().to_type(ScalarType.Float32);
        Tensor min, max;
        if (spec.Scheme.IsPerChannel())
        {
            if (spec.ChannelAxis >= values.dim())
                throw new ArgumentException(
                    $"Per-channel quantization along axis {spec.ChannelAxis} needs a tensor of rank > {spec.ChannelAxis}; got shape [{string.Join(",", values.shape)}].");
            var channels = values.movedim(new long[] { spec.ChannelAxis }, new long[] { 0 }).reshape(values.shape[spec.ChannelAxis], -1);
            min = channels.amin(new long[] { 1 });
            max = channels.amax(new long[] { 1 });
        }
        else
        {
            min = values.min().reshape(1);
            max = values.max().reshape(1);
        }
        return (min.MoveToOuterDisposeScope(), max.MoveToOuterDisposeScope());
    }

    /// <summary>Detached CPU copies of qparams, for reports and export.</summary>
    public static QParams CpuCopy(QParams qParams)
    {
        // Each intermediate is held: a chained temporary (x.detach() in x.detach().cpu()) is unreachable during the
        // next native call, and its finalizer can free it mid-call.
        using var scale = qParams.Scale.detach();
        using var zeroPoint = qParams.ZeroPoint.detach();
        using var scaleCpu = scale.cpu();
        using var zeroPointCpu = zeroPoint.cpu();
        return new QParams(scaleCpu.clone(), zeroPointCpu.clone(), qParams.Spec);
    }
}
