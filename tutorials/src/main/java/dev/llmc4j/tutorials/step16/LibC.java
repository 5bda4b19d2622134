package dev.llmc4j.tutorials.step16;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * Step 16, part 1: the Foreign Function and Memory API (java.lang.foreign, final since Java 22) on functions every
 * Linux machine has, so that the test runs them for real.
 *
 * <pre>
 *   size_t strlen(const char* s);                                       libc, the default lookup
 *   char*  getenv(const char* name);                                    libc: a C string coming back
 *   double cos(double x);                                               libm, opened by name
 *   void   qsort(void* base, size_t count, size_t size,
 *                int (*compare)(const void*, const void*));            libc, calls back into Java (an upcall)
 * </pre>
 * On x86-64 and AArch64 Linux a C {@code size_t} is 64 bits (JAVA_LONG), an {@code int} 32 (JAVA_INT) and every
 * pointer an ADDRESS. Binding is restricted ("native access"): the JVM warns unless it runs with
 * {@code --enable-native-access=ALL-UNNAMED}, which the build passes.
 */
@SuppressWarnings("restricted") // FFM: calling native code is the lesson
public final class LibC {
    private LibC() {}

    // tag::bind[]
    /** The linker of this platform: it knows the C calling convention (which register gets which argument). */
    static final Linker LINKER = Linker.nativeLinker();

    /** The libraries the JVM already has loaded, libc among them: no file name needed. */
    static final SymbolLookup LIBC = LINKER.defaultLookup();

    /** A downcall handle: a MethodHandle that calls the C function. Descriptor = (return layout, argument layouts). */
    static final MethodHandle STRLEN = LINKER.downcallHandle(
            LIBC.find("strlen").orElseThrow(), FunctionDescriptor.of(JAVA_LONG, ADDRESS)); // size_t strlen(const char*)

    /** Any other library is opened by name (the dynamic loader searches) or by path, for the arena's lifetime. */
    static final SymbolLookup LIBM = SymbolLookup.libraryLookup("libm.so.6", Arena.global());

    static final MethodHandle COS = LINKER.downcallHandle(
            LIBM.find("cos").orElseThrow(), FunctionDescriptor.of(JAVA_DOUBLE, JAVA_DOUBLE)); // double cos(double)
    // end::bind[]

    static final MethodHandle GETENV = LINKER.downcallHandle(
            LIBC.find("getenv").orElseThrow(), FunctionDescriptor.of(ADDRESS, ADDRESS)); // char* getenv(const char*)

    /**
     * The same strlen, marked critical: no switch of the thread's state around the call (cheaper), and it may read
     * a Java array directly. Only for short calls that never block and never call back into Java.
     */
    static final MethodHandle STRLEN_CRITICAL = LINKER.downcallHandle(
            LIBC.find("strlen").orElseThrow(), FunctionDescriptor.of(JAVA_LONG, ADDRESS), Linker.Option.critical(true));

    // tag::strlen[]
    /** strlen of a Java string: copy it into native memory as UTF-8 + NUL, call, free when the arena closes. */
    public static long strlen(String s) {
        try (Arena arena = Arena.ofConfined()) { // confined: this thread only; freed at close
            MemorySegment cString = arena.allocateFrom(s); // UTF-8 bytes and a terminating 0
            return (long) STRLEN.invokeExact(cString); // invokeExact: the types must match exactly
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
    // end::strlen[]

    /** strlen on a NUL-terminated byte[] on the Java heap, through the critical handle (no copy). */
    public static long strlenCritical(byte[] nulTerminated) {
        try {
            return (long) STRLEN_CRITICAL.invokeExact(MemorySegment.ofArray(nulTerminated));
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** strlen on a C string that is already in native memory (what the timing loop calls). */
    public static long strlen(MemorySegment cString) {
        try {
            return (long) STRLEN.invokeExact(cString);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    public static double cos(double x) {
        try {
            return (double) COS.invokeExact(x);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    // tag::getenv[]
    /**
     * getenv returns a pointer that C owns. FFM hands it back as a segment of length 0 (it cannot know the size):
     * reinterpret gives it a size we vouch for, and getString reads up to the NUL.
     */
    public static String getenv(String name) {
        try (Arena arena = Arena.ofConfined()) {
            var value = (MemorySegment) GETENV.invokeExact(arena.allocateFrom(name));
            if (value.equals(MemorySegment.NULL)) return null;
            return value.reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
    // end::getenv[]

    /** How many times C called {@link #compareInts} (one thread at a time; the test prints the cost per upcall). */
    static long comparisons;

    // tag::qsort[]
    static final MethodHandle QSORT = LINKER.downcallHandle(
            LIBC.find("qsort").orElseThrow(), FunctionDescriptor.ofVoid(ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS));

    /** The comparator's C signature: int (const int*, const int*). withTargetLayout makes the pointers readable. */
    static final FunctionDescriptor COMPARE_INTS =
            FunctionDescriptor.of(JAVA_INT, ADDRESS.withTargetLayout(JAVA_INT), ADDRESS.withTargetLayout(JAVA_INT));

    /** Called by qsort, from C, through the upcall stub. */
    static int compareInts(MemorySegment a, MemorySegment b) {
        comparisons++;
        return Integer.compare(a.get(JAVA_INT, 0), b.get(JAVA_INT, 0));
    }

    public static long comparisons() {
        return comparisons;
    }

    /** Sorts a copy of {@code values} with C's qsort calling back into {@link #compareInts}. */
    public static int[] qsort(int[] values) {
        try (Arena arena = Arena.ofConfined()) {
            MethodHandle compare = MethodHandles.lookup()
                    .findStatic(
                            LibC.class,
                            "compareInts",
                            MethodType.methodType(int.class, MemorySegment.class, MemorySegment.class));
            // an upcall stub: a C function pointer that calls the Java method; valid while the arena is open
            MemorySegment comparePointer = LINKER.upcallStub(compare, COMPARE_INTS, arena);
            MemorySegment array = arena.allocateFrom(JAVA_INT, values); // int[n] in native memory
            QSORT.invokeExact(array, (long) values.length, JAVA_INT.byteSize(), comparePointer);
            return array.toArray(JAVA_INT); // copy back to the heap
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
    // end::qsort[]
}
