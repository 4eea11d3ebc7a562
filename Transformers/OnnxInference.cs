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
        UseOrtExtensions(ml); // so text pipelines (their tokenizer step) load with this context too
        return cuda ? "CUDA" : "CPU";
    }

    /// <summary>Registers ONNX Runtime Extensions' operators (Microsoft.ML.OnnxRuntime.Extensions) in every ONNX session
    /// <paramref name="ml"/> creates, keeping the session options already installed (an execution provider, threads).
    /// A text pipeline's tokenizer step needs them; <c>TokenizeText</c> calls this. Production code without MLNetQuant
    /// does the same in two lines before <c>Model.Load</c>:
    /// <code>ml.SetOnnxSessionOption(new OnnxSessionOptions { CreateSessionOptions = () =&gt;
    ///     { var options = new SessionOptions(); options.RegisterOrtExtensions(); return options; } });</code>
    /// Calling it again changes nothing.</summary>
    public static void UseOrtExtensions(MLContext ml)
    {
        ArgumentNullException.ThrowIfNull(ml);
        var current = ml.GetOnnxSessionOption();
        if (current is not null && WithExtensions.TryGetValue(current, out _)) return;
        var create = current?.CreateSessionOptions;
        var options = new OnnxSessionOptions
        {
            CreateSessionOptions = () =>
            {
                var session = create is null ? Defaults(current) : create();
                session.RegisterOrtExtensions();
                return session;
            },
        };
        WithExtensions.Add(options, new object());
        ml.SetOnnxSessionOption(options);
    }

    // Session options installed by UseOrtExtensions (so a second call does not register the operators twice).
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<OnnxSessionOptions, object> WithExtensions = new();

    // ML.NET builds a session from OnnxSessionOptions' properties when it has no CreateSessionOptions; keep the ones set.
    private static SessionOptions Defaults(OnnxSessionOptions? settings)
    {
        var session = new SessionOptions();
        if (settings is null) return session;
        session.IntraOpNumThreads = settings.IntraOpNumThreads;
        session.InterOpNumThreads = settings.InterOpNumThreads;
        session.GraphOptimizationLevel = settings.GraphOptimizationLevel;
        session.ExecutionMode = settings.ExecutionMode;
        session.EnableMemoryPattern = settings.EnableMemoryPattern;
        session.EnableCpuMemArena = settings.EnableCpuMemArena;
        return session;
    }

    /// <summary>Whether the loaded ONNX Runtime offers the CUDA execution provider.</summary>
    public static bool HasCuda() =>
        OrtEnv.Instance().GetAvailableProviders().Contains("CUDAExecutionProvider", StringComparer.Ordinal);
}
