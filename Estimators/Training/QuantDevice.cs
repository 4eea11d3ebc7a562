using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.Training;

/// <summary>Where training and calibration run.</summary>
public sealed record QuantDevice
{
    private QuantDevice(QuantDeviceKind kind, int index)
    {
        Kind = kind;
        Index = index;
    }

    /// <summary>CUDA when TorchSharp sees a GPU (a TorchSharp-cuda native bundle and a driver), else the CPU.</summary>
    public static QuantDevice Auto { get; } = new(QuantDeviceKind.Auto, 0);

    /// <summary>The CPU.</summary>
    public static QuantDevice Cpu { get; } = new(QuantDeviceKind.Cpu, 0);

    /// <summary>The CUDA device with the given index.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A negative index.</exception>
    public static QuantDevice Cuda(int index = 0) => index >= 0
        ? new QuantDevice(QuantDeviceKind.Cuda, index)
        : throw new ArgumentOutOfRangeException(nameof(index), index, "The CUDA device index must be >= 0.");

    /// <summary>Auto, Cpu or Cuda.</summary>
    public QuantDeviceKind Kind { get; }

    /// <summary>The CUDA device index (Cuda only).</summary>
    public int Index { get; }

    /// <summary>The TorchSharp device this resolves to on this machine.</summary>
    /// <exception cref="InvalidOperationException">CUDA asked for but not available, or an index past the device count.</exception>
    public Device Resolve()
    {
        switch (Kind)
        {
            case QuantDeviceKind.Cpu:
                return CPU;
            case QuantDeviceKind.Auto:
                return cuda.is_available() ? CUDA : CPU;
            default:
                if (!cuda.is_available())
                    throw new InvalidOperationException(
                        "QuantDevice.Cuda was requested but TorchSharp sees no CUDA device. Reference TorchSharp-cuda-linux " +
                        "(or -windows) instead of TorchSharp-cpu, check the driver, or use QuantDevice.Auto.");
                if (Index >= cuda.device_count())
                    throw new InvalidOperationException($"CUDA device {Index} requested, but only {cuda.device_count()} exist.");
                return new Device(DeviceType.CUDA, Index);
        }
    }

    /// <inheritdoc />
    public override string ToString() => Kind == QuantDeviceKind.Cuda ? $"Cuda({Index})" : Kind.ToString();
}

/// <summary>The kinds of <see cref="QuantDevice"/>.</summary>
public enum QuantDeviceKind
{
    /// <summary>CUDA when available, else CPU.</summary>
    Auto,

    /// <summary>The CPU.</summary>
    Cpu,

    /// <summary>A CUDA GPU.</summary>
    Cuda,
}
