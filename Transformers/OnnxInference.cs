using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Onnx;

namespace MLNetQuant;

/// <summary>Chooses ONNX Runtime's execution provider for ML.NET's ONNX transformers — the ones MLNetQuant's models
/// run on, before and after <c>Model.Load</c>. ML.NET throws (EntryPointNotFoundException, ML.NET #4656) when
/// <c>MLContext.GpuDeviceId</c> is set but only the CPU ONNX Runtime package is present; this helper asks ONNX Runtime
/// what it has instead.</summary>
public static class OnnxInference
{
    /// <summary>Installs session options on <paramref name="ml"/> that use CUDA device <paramref name="cudaDeviceId"/>
    /// when the CUDA execution provider is present (Microsoft.ML.OnnxRuntime.Gpu) and the CPU otherwise; clears
    /// <c>GpuDeviceId</c> in the CPU case so ML.NET does not try CUDA itself. Call before creating or loading
    /// models with this context.</summary>
    /// <returns>"CUDA" or "CPU": the provider the sessions will use.</returns>
    public static string UseBestExecutionProvider(MLContext ml, int cudaDeviceId = 0)
    {
        ArgumentNullException.ThrowIfNull(ml);
        if (cudaDeviceId < 0) throw new ArgumentOutOfRangeException(nameof(cudaDeviceId), cudaDeviceId, "The CUDA device id must be >= 0.");
        var cuda = HasCuda();
        if (!cuda) ml.GpuDeviceId = null;
        ml.SetOnnxSessionOption(new OnnxSessionOptions
        {
            CreateSessionOptions = () => cuda ? SessionOptions.MakeSessionOptionWithCudaProvider(cudaDeviceId) : new SessionOptions(),
        });
        return cuda ? "CUDA" : "CPU";
    }

    /// <summary>Whether the loaded ONNX Runtime offers the CUDA execution provider.</summary>
    public static bool HasCuda() =>
        OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider", StringComparer.Ordinal);
}
