using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.Core.Observers;

/// <summary>Collects statistics of a tensor over calibration or training batches (<see cref="Observe"/>) and turns
/// them into quantization parameters on demand (<see cref="ComputeQParams"/>). Statistics live on the device of the
/// observed data; observing never records gradients.</summary>
public abstract class QuantObserver : IDisposable
{
    /// <summary>Creates an observer for <paramref name="spec"/>.</summary>
    protected QuantObserver(QuantSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Spec = spec;
    }

    /// <summary>The grid the parameters are computed for.</summary>
    public QuantSpec Spec { get; }

    /// <summary>Number of non-empty batches observed so far.</summary>
    public long ObservedBatches { get; private set; }

    /// <summary>Adds one batch to the statistics. Empty tensors are ignored (as in PyTorch).</summary>
    /// <exception cref="ArgumentException">The tensor is not floating point, or contains NaN or infinite values.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A per-channel axis the tensor does not have.</exception>
    public void Observe(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        TensorChecks.ThrowIfNotFloatingPoint(x, nameof(x));
        if (Spec.Scheme.IsPerChannel()) TensorChecks.ThrowIfAxisOutOfRange(x, Spec.ChannelAxis, "channelAxis");
        if (x.numel() == 0) return;
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        ObserveCore(x.detach().to_type(ScalarType.Float32));
        DataDevice = x.device;
        ObservedBatches++;
    }

    /// <summary>The quantization parameters for what was observed so far.</summary>
    /// <exception cref="InvalidOperationException">Nothing has been observed yet.</exception>
    public QParams ComputeQParams()
    {
        if (ObservedBatches == 0)
            throw new InvalidOperationException(
                $"{GetType().Name} has observed no data; call Observe with at least one non-empty batch first.");
        using var noGrad = no_grad();
        return ComputeQParamsCore();
    }

    /// <summary>Device of the most recently observed batch; qparams are returned there.</summary>
    protected Device? DataDevice { get; private set; }

    /// <summary>Moves parameters computed on the CPU to <see cref="DataDevice"/>.</summary>
    protected QParams OnDataDevice(QParams cpuParams)
    {
        if (DataDevice is null || DataDevice.type == DeviceType.CPU) return cpuParams;
        using (cpuParams) return cpuParams.To(DataDevice);
    }

    /// <summary>Adds a detached, non-empty float32 batch (already validated for type and axis).</summary>
    protected abstract void ObserveCore(Tensor x);

    /// <summary>Computes the parameters; called only after at least one batch.</summary>
    protected abstract QParams ComputeQParamsCore();

    /// <summary>Releases the statistics tensors.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Throws unless the spec's scheme is per-tensor (or per-channel when <paramref name="perChannel"/>).</summary>
    protected static QuantSpec RequireScheme(QuantSpec spec, bool perChannel, string observerName)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Scheme.IsPerChannel() != perChannel)
            throw new ArgumentException(
                $"{observerName} needs a {(perChannel ? "per-channel" : "per-tensor")} scheme, not {spec.Scheme}.", nameof(spec));
        return spec;
    }
}
