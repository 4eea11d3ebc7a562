using System.Runtime.InteropServices;

namespace MLNetQuant;

/// <summary>getenv/setenv of the process's C library, found by its real file name: DllImport("libc") resolves through
/// "libc.so", which only exists where the C development files are installed.</summary>
internal sealed class NativeEnvironment
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int SetenvFunction(IntPtr name, IntPtr value, int overwrite);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr GetenvFunction(IntPtr name);

    private readonly SetenvFunction _setenv;
    private readonly GetenvFunction _getenv;

    private NativeEnvironment(SetenvFunction setenv, GetenvFunction getenv) => (_setenv, _getenv) = (setenv, getenv);

    /// <summary>The C library of this process, or null where none exports both functions.</summary>
    public static NativeEnvironment? Load()
    {
        foreach (var name in new[] { "libc.so.6", "libc.musl-x86_64.so.1", "libSystem.dylib", "libc" })
        {
            if (!NativeLibrary.TryLoad(name, out var handle)) continue;
            if (NativeLibrary.TryGetExport(handle, "setenv", out var setenv) && NativeLibrary.TryGetExport(handle, "getenv", out var getenv))
                return new NativeEnvironment(Marshal.GetDelegateForFunctionPointer<SetenvFunction>(setenv),
                    Marshal.GetDelegateForFunctionPointer<GetenvFunction>(getenv));
        }
        return null;
    }

    /// <summary>setenv(name, value, overwrite = 1); false when it fails.</summary>
    public bool Setenv(string name, string value)
    {
        var (n, v) = (Marshal.StringToCoTaskMemUTF8(name), Marshal.StringToCoTaskMemUTF8(value));
        try { return _setenv(n, v, 1) == 0; }
        finally { Marshal.FreeCoTaskMem(n); Marshal.FreeCoTaskMem(v); }
    }

    /// <summary>getenv(name): null when unset.</summary>
    public string? Getenv(string name)
    {
        var n = Marshal.StringToCoTaskMemUTF8(name);
        try { return Marshal.PtrToStringUTF8(_getenv(n)); }
        finally { Marshal.FreeCoTaskMem(n); }
    }
}
