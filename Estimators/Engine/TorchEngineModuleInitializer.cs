using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace MLNetQuant;

/// <summary>Applies <see cref="TorchEngine.Protect"/> as soon as this assembly is used, so that every run through
/// MLNetQuant whose first forward pass happens inside it is protected without a call from the user.</summary>
internal static class TorchEngineModuleInitializer
{
    [ModuleInitializer]
    [SuppressMessage("Usage", "CA2255:The 'ModuleInitializer' attribute should not be used in libraries",
        Justification = "The oneDNN cap must precede the first TorchSharp forward pass, which may be the caller's own.")]
    internal static void Initialize() => TorchEngine.Protect();
}
