using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms.Onnx;

namespace MLNetQuant;

/// <summary>Chooses ONNX Runtime's execution provider, operator extensions and CPU threading for ML.NET's ONNX
/// transformers — the ones MLNetQuant's models run on, before and after <c>Model.Load</c>. ML.NET throws
/// (EntryPointNotFoundException, ML.NET #4656) when <c>MLContext.GpuDeviceId</c> is set but only the CPU ONNX Runtime
/// package is present; this helper asks ONNX Runtime what it has instead.</summary>
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
        if (HasExtensions(ml.GetOnnxSessionOption())) return;
        AddToInstalled(ml, session => session.RegisterOrtExtensions(), registersExtensions: true);
    }

    /// <summary>ONNX Runtime session options for the CPU: <paramref name="threads"/> intra-op threads (0: ONNX Runtime's
    /// default, one per core) that sleep between parallel sections unless <paramref name="spinWhenIdle"/>. ONNX Runtime's
    /// own default is to spin, which costs when several sessions in one process run one after the other (a float and an
    /// int8 model, a detector then a recognizer): the idle session's worker keeps spinning into the next session's work and
    /// takes a core it needs. Measured on 2 cores (BENCHMARKS.md, "Idle threads"): ResNet-18 float and int8 alternating,
    /// both spinning, 12.5 / 5.0 ms per image at batch 1; both sleeping 11.7 / 4.1 ms — and each alone in its process
    /// runs as fast either way.</summary>
    public static SessionOptions CreateCpuSessionOptions(int threads = 0, bool spinWhenIdle = false)
    {
        ValidateThreads(threads);
        var options = new SessionOptions();
        Configure(options, threads, spinWhenIdle);
        return options;
    }

    /// <summary>Makes every ONNX session <paramref name="ml"/> creates use <paramref name="threads"/> intra-op threads
    /// (0: ONNX Runtime's default) that sleep between parallel sections unless <paramref name="spinWhenIdle"/> (see
    /// <see cref="CreateCpuSessionOptions"/>: it matters when several models run alternately in one process), keeping the
    /// options already installed (an execution provider, ONNX Runtime Extensions). Production code without MLNetQuant
    /// does the same before <c>Model.Load</c>:
    /// <code>ml.SetOnnxSessionOption(new OnnxSessionOptions { CreateSessionOptions = () =&gt; { var options = new SessionOptions();
    ///     options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0"); return options; } });</code></summary>
    public static void UseCpuThreads(MLContext ml, int threads = 0, bool spinWhenIdle = false)
    {
        ArgumentNullException.ThrowIfNull(ml);
        ValidateThreads(threads);
        AddToInstalled(ml, session => Configure(session, threads, spinWhenIdle), registersExtensions: false);
    }

    // Installs session options that build on those installed on ml (or on ML.NET's defaults) and then apply configure;
    // they count as registering the Extensions' operators when configure does or the installed ones did.
    private static void AddToInstalled(MLContext ml, Action<SessionOptions> configure, bool registersExtensions)
    {
        var current = ml.GetOnnxSessionOption();
        var create = current?.CreateSessionOptions;
        var options = new OnnxSessionOptions
        {
            CreateSessionOptions = () =>
            {
                var session = create is null ? Defaults(current) : create();
                configure(session);
                return session;
            },
        };
        if (registersExtensions || HasExtensions(current)) WithExtensions.Add(options, new object());
        ml.SetOnnxSessionOption(options);
    }

    private static bool HasExtensions(OnnxSessionOptions? options) => options is not null && WithExtensions.TryGetValue(options, out _);

    private static void ValidateThreads(int threads)
    {
        if (threads < 0) throw new ArgumentOutOfRangeException(nameof(threads), threads, "The thread count must be >= 0 (0: ONNX Runtime's default).");
    }

    private static void Configure(SessionOptions options, int threads, bool spinWhenIdle)
    {
        if (threads > 0) options.IntraOpNumThreads = threads;
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", spinWhenIdle ? "1" : "0");
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
